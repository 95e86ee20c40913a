"""How a method's recall at fixed bits moves with corpus size: the same codes on nested subsets.

The plan's thresholds are written for ~500K passages, and a collection of a few thousand says
little about them directly: every passage added is one more distractor that a 256-bit code can
rank above a true neighbour, so recall at fixed bits falls as the corpus grows. The ladder makes
that trend visible on the collections at hand. Each rung is a seeded random subset of the corpus
that keeps every judged passage (as the plan's MS MARCO and NQ samples do, so nDCG stays
comparable), the rungs nested (each holds the one below), the top rung the whole corpus; on each
the exact float top-k is recomputed and every chosen method is built and scored the one way every
method is (``evaluation.search_and_score``). The slope of recall_at_10 against log10(passages)
says how much a tenfold larger corpus costs; it is measured, never extrapolated into a number at
the plan's scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from phase2_assets.compute.methods import Method, Settings
from phase2_assets.compute.search import evaluation
from phase2_assets.compute.search.exact_search import float_topk

COLUMNS = {
    "dataset": "BEIR collection",
    "model": "embedding model",
    "method": "retrieval method (registry name)",
    "bits": "code bits per vector",
    "corpus_docs": "passages in this rung's subset (the top rung is the whole corpus)",
    "recall_at_10": "overlap with the exact float top-10 of the same subset",
    "ndcg_at_10": "nDCG@10 against the qrels (every judged passage is in every rung)",
    "n_queries": "queries scored",
}


def rungs(n_docs: int, sizes: Sequence[int], judged: np.ndarray, seed: int) -> list[np.ndarray]:
    """Sorted corpus rows of each rung, smallest first: the judged rows plus the first
    ``size - len(judged)`` rows of one seeded permutation of the others, for every configured
    size that is below ``n_docs`` and holds every judged row; then the whole corpus."""
    judged = np.unique(np.asarray(judged, dtype=np.int64))
    if judged.size and (judged[0] < 0 or judged[-1] >= n_docs):
        raise ValueError(f"judged rows outside the corpus of {n_docs} passages")
    others = np.setdiff1d(np.arange(n_docs, dtype=np.int64), judged, assume_unique=True)
    order = np.random.default_rng(seed).permutation(others)
    out = []
    for size in sorted({int(s) for s in sizes if judged.size <= int(s) < n_docs}):
        out.append(np.sort(np.concatenate([judged, order[: size - judged.size]])))
    out.append(np.arange(n_docs, dtype=np.int64))
    return out


def _subset_qrels(qrels: Sequence[Mapping[int, float]], rows: np.ndarray) -> list[dict]:
    """qrels re-keyed to positions in ``rows`` (sorted); passages outside it dropped."""
    out = []
    for judged in qrels:
        keys = np.fromiter(judged.keys(), dtype=np.int64, count=len(judged))
        pos = np.searchsorted(rows, keys)
        inside = (pos < len(rows)) & (rows[np.minimum(pos, len(rows) - 1)] == keys)
        out.append({int(p): judged[int(k)] for p, k in zip(pos[inside], keys[inside], strict=True)})
    return out


def ladder(
    corpus: np.ndarray,
    queries: np.ndarray,
    qrels: Sequence[Mapping[int, float]],
    methods: Sequence[tuple[Method, int | None]],
    *,
    sizes: Sequence[int],
    seed: int,
    settings: Settings,
    k: int = 100,
) -> tuple[list[dict], dict[tuple[str, int | None, int], str]]:
    """Rows (method, bits, corpus_docs, metrics) of every method on every rung, and the
    (method, bits, corpus_docs) a method could not be built on, with why. No timings: the
    table is a pure function of its inputs, byte-identical on every rerun."""
    judged = np.fromiter((d for q in qrels for d in q), dtype=np.int64)
    rows_out: list[dict] = []
    skipped: dict[tuple[str, int | None, int], str] = {}
    dim = corpus.shape[1]
    for rows in rungs(len(corpus), sizes, judged, seed):
        sub = corpus if len(rows) == len(corpus) else np.ascontiguousarray(corpus[rows])
        scores, ids = float_topk(
            queries, sub, k, query_block=settings.query_block, corpus_block=settings.corpus_block
        )
        refs = evaluation.References(ids, scores, _subset_qrels(qrels, rows), n_docs=len(rows))
        for method, bits in methods:
            reason = method.requirement(len(rows), dim, bits, settings)
            if reason is not None:
                skipped[(method.name, bits, len(rows))] = reason
                continue
            built = method.build(sub, bits, settings)
            row = evaluation.search_and_score(
                method, built, queries, refs, bits=bits, settings=settings
            )
            rows_out.append(
                {
                    "method": method.name,
                    "bits": row["bits"],
                    "corpus_docs": len(rows),
                    "recall_at_10": row["recall_at_10"],
                    "ndcg_at_10": row["ndcg_at_10"],
                    "n_queries": row["n_queries"],
                }
            )
    return rows_out, skipped


def table(rows: list[dict], dataset: str, model: str) -> pl.DataFrame:
    schema = {
        "dataset": pl.String,
        "model": pl.String,
        "method": pl.String,
        "bits": pl.Int64,
        "corpus_docs": pl.Int64,
        "recall_at_10": pl.Float64,
        "ndcg_at_10": pl.Float64,
        "n_queries": pl.Int64,
    }
    frame = pl.DataFrame([{"dataset": dataset, "model": model, **r} for r in rows], schema=schema)
    return frame.sort("method", "bits", "corpus_docs")


def trend(ladder_table: pl.DataFrame) -> pl.DataFrame:
    """Per (dataset, model, method, bits) with at least two rungs: the change of recall_at_10
    per tenfold corpus (least-squares slope against log10 passages), over which sizes."""
    from sklearn.linear_model import LinearRegression  # here: scikit-learn costs ~1.5 s at load

    keys = ["dataset", "model", "method", "bits"]
    out = []
    for key, group in ladder_table.sort("corpus_docs").group_by(keys, maintain_order=True):
        if group.height < 2:
            continue
        x = np.log10(group["corpus_docs"].to_numpy().astype(float))[:, None]
        y = group["recall_at_10"].to_numpy()
        slope = float(LinearRegression().fit(x, y).coef_[0])
        out.append(
            {
                **dict(zip(keys, key, strict=True)),
                "smallest_docs": int(group["corpus_docs"][0]),
                "largest_docs": int(group["corpus_docs"][-1]),
                "recall_at_10_smallest": float(y[0]),
                "recall_at_10_largest": float(y[-1]),
                "recall_change_per_tenfold": slope,
            }
        )
    schema = {
        "dataset": pl.String,
        "model": pl.String,
        "method": pl.String,
        "bits": pl.Int64,
        "smallest_docs": pl.Int64,
        "largest_docs": pl.Int64,
        "recall_at_10_smallest": pl.Float64,
        "recall_at_10_largest": pl.Float64,
        "recall_change_per_tenfold": pl.Float64,
    }
    return pl.DataFrame(out, schema=schema)


def single_rung(ladder_table: pl.DataFrame) -> str | None:
    """The pairs the trend leaves out, named with their corpus size, or None: a pair has one
    rung when no configured size lies between its judged passages and its whole corpus."""
    rungs_per_pair = ladder_table.group_by("dataset", "model").agg(
        pl.col("corpus_docs").n_unique().alias("rungs"), pl.col("corpus_docs").max()
    )
    alone = rungs_per_pair.filter(pl.col("rungs") < 2).sort("dataset", "model")
    if alone.height == 0:
        return None
    named = ", ".join(f"{d} × {m} ({n:,} passages)" for d, m, _, n in alone.rows())
    return (
        f"No trend on {named}: one rung only, since no `ladder.sizes` value lies between their "
        "judged passages (every rung keeps them all) and the whole corpus."
    )
