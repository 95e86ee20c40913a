"""One method's row of the results table, from its top-k ids and the shared references."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from phase2_assets.compute.methods import Built, Method, Settings
from phase2_assets.compute.search.metrics import PAD, retrieval_metrics


@dataclass(frozen=True)
class References:
    """What every method is scored against: exact float top-k and the task judgements."""

    truth_ids: np.ndarray  # (nq, K) exact float top-K corpus rows
    truth_scores: np.ndarray  # (nq, K) their cosine similarities
    qrels: list[dict[int, float]]  # per query row: corpus row -> relevance
    n_docs: int


def references(
    ground_truth: dict[str, np.ndarray], judgements: pl.DataFrame, n_queries: int, n_docs: int
) -> References:
    """The references of one (dataset, model) pair from its stored ground truth (ids, scores)
    and its judgements by (query row, corpus row)."""
    return References(
        truth_ids=ground_truth["ids"],
        truth_scores=ground_truth["scores"],
        qrels=qrels_lists(judgements, n_queries),
        n_docs=n_docs,
    )


def judgements_by_row(
    corpus_ids: list[str], query_ids: list[str], qrels: pl.DataFrame
) -> pl.DataFrame:
    """qrels re-keyed by (query row, corpus row): the row order every array of the study uses."""
    doc_row = pl.DataFrame({"doc_id": corpus_ids, "doc_row": np.arange(len(corpus_ids))})
    query_row = pl.DataFrame({"query_id": query_ids, "query_row": np.arange(len(query_ids))})
    return (
        qrels.join(query_row, on="query_id", how="inner")
        .join(doc_row, on="doc_id", how="inner")
        .select("query_row", "doc_row", "score")
        .sort("query_row", "doc_row")
    )


def qrels_lists(judgements: pl.DataFrame, n_queries: int) -> list[dict[int, float]]:
    out: list[dict[int, float]] = [{} for _ in range(n_queries)]
    for q, d, s in judgements.iter_rows():
        out[q][d] = float(s)
    return out


class SearchOutputError(ValueError):
    """A method's search returned ids that cannot be scored: refused, never scored."""


def _refuse(method: Method, bits: int | None, what: str, example: str = "") -> SearchOutputError:
    at = f" at {bits} bits" if bits is not None else ""
    tail = f"; e.g. {example}" if example else ""
    return SearchOutputError(
        f"method {method.name!r}{at}: its search output cannot be scored: {what}{tail}. "
        "Nothing was scored for it."
    )


def _cell(ids: np.ndarray, r: int, c: int) -> str:
    return f"query row {r}, column {c}: {ids[r, c].item()!r}"


def check_search_output(
    method: Method, ids, *, n_queries: int, k: int, n_docs: int, bits: int | None = None
) -> np.ndarray:
    """``ids`` as returned by ``method.search`` for ``n_queries`` queries and ``k`` results
    (``k`` = min(requested, n_docs), the ground truth's columns), or ``SearchOutputError``
    naming the method, what is wrong and one offending cell. A ranking is a 2-d integer array
    of exactly (n_queries, k) corpus rows in [0, n_docs), no row twice in one query's list;
    ``PAD`` (-1, "no result") only from a method that declares ``may_return_fewer``, and then
    only after the query's last result (the metrics score it as a miss)."""
    if not isinstance(ids, np.ndarray):
        raise _refuse(method, bits, f"it returned a {type(ids).__name__}, not a numpy array")
    if ids.ndim != 2:
        raise _refuse(method, bits, f"a {ids.ndim}-d array of shape {ids.shape}, not 2-d")
    if not np.issubdtype(ids.dtype, np.integer):
        example = ""
        if ids.size and np.issubdtype(ids.dtype, np.floating):
            nan = np.argwhere(~np.isfinite(ids))
            r, c = nan[0] if nan.size else (0, 0)
            example = _cell(ids, int(r), int(c))
        raise _refuse(method, bits, f"ids of dtype {ids.dtype}, not integer corpus rows", example)
    if ids.shape != (n_queries, k):
        raise _refuse(
            method,
            bits,
            f"shape {ids.shape}, expected ({n_queries}, {k}): {n_queries} queries x the top-{k} "
            "asked for",
        )
    if ids.size == 0:
        return ids
    pad = ids == PAD
    bad = (ids < 0) & ~pad | (ids >= n_docs)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise _refuse(
            method, bits, f"ids outside the corpus rows [0, {n_docs})", _cell(ids, int(r), int(c))
        )
    if pad.any():
        if not method.may_return_fewer:
            r, c = np.argwhere(pad)[0]
            raise _refuse(
                method,
                bits,
                f"{int(pad.sum())} of {ids.size} ids are {PAD} (no result), and the method does "
                "not declare that it may return fewer than k results (may_return_fewer)",
                _cell(ids, int(r), int(c)),
            )
        # Padding only at the end of a row: a result after a -1 is a hole in the ranking.
        hole = pad[:, :-1] & ~pad[:, 1:]
        if hole.any():
            r, c = np.argwhere(hole)[0]
            raise _refuse(
                method,
                bits,
                f"{PAD} (no result) before a result: padding must come after a query's last result",
                _cell(ids, int(r), int(c)),
            )
    order = np.sort(ids, axis=1)
    twice = (order[:, 1:] == order[:, :-1]) & (order[:, 1:] != PAD)
    if twice.any():
        r = int(np.argwhere(twice)[0][0])
        value = int(order[r, 1:][twice[r]][0])
        cols = np.flatnonzero(ids[r] == value)
        raise _refuse(
            method,
            bits,
            f"corpus row {value} returned {cols.size} times for one query (columns "
            f"{', '.join(map(str, cols[:10].tolist()))}); each row may appear once per query",
            _cell(ids, r, int(cols[1])),
        )
    return ids


def method_row(
    method: Method,
    pred_ids: np.ndarray,
    refs: References,
    *,
    dim: int,
    bits: int | None,
    search_seconds: float,
) -> dict:
    truth_queries, k = refs.truth_ids.shape
    check_search_output(
        method, pred_ids, n_queries=truth_queries, k=k, n_docs=refs.n_docs, bits=bits
    )
    memory = method.memory(dim, bits)
    row = {
        "method": method.name,
        "bits": method.code_bits(dim, bits),
        "bytes_per_vector": float(memory.bytes_per_vector),
        "extra_bytes_per_vector": float(memory.extra_bytes_per_vector),
        "external_bytes_per_vector": float(memory.external_bytes_per_vector),
        "fixed_overhead_bytes": int(memory.fixed_overhead_bytes),
        # In memory for search: codes + per-vector extras + fixed overhead (not external bytes).
        "index_bytes_total": int(
            round((memory.bytes_per_vector + memory.extra_bytes_per_vector) * refs.n_docs)
        )
        + int(memory.fixed_overhead_bytes),
    }
    row.update(retrieval_metrics(pred_ids, refs.truth_ids, refs.truth_scores, refs.qrels))
    row.update(
        {
            "n_docs": refs.n_docs,
            "n_queries": int(pred_ids.shape[0]),
            "search_seconds": search_seconds,
        }
    )
    return row


def search_and_score(
    method: Method,
    built: Built,
    queries: np.ndarray,
    refs: References,
    *,
    bits: int | None,
    settings: Settings,
) -> dict:
    k = refs.truth_ids.shape[1]
    t0 = time.perf_counter()
    pred = method.search(built, queries, k, bits, settings)
    seconds = time.perf_counter() - t0
    # method_row checks the ids against (queries, k) before anything is scored.
    return method_row(method, pred, refs, dim=queries.shape[1], bits=bits, search_seconds=seconds)


RESULT_COLUMNS = [
    "dataset",
    "model",
    "method",
    "bits",
    "bytes_per_vector",
    "extra_bytes_per_vector",
    "external_bytes_per_vector",
    "fixed_overhead_bytes",
    "index_bytes_total",
    "recall_at_1",
    "recall_at_5",
    "recall_at_10",
    "recall_at_50",
    "recall_at_100",
    "overlap_at_10",
    "ndcg_at_10",
    "ndcg_at_10_vs_float",
    "n_docs",
    "n_queries",
]


_TYPES = {"dataset": pl.String, "model": pl.String, "method": pl.String, "bits": pl.Int64}
_INTS = ("fixed_overhead_bytes", "index_bytes_total", "n_docs", "n_queries")


def empty_results() -> pl.DataFrame:
    """The results table with no rows, typed as a full one is: a string column compared with a
    string downstream (method == "binary") must not be a number column just because it is empty."""
    return pl.DataFrame(
        schema={c: _TYPES.get(c, pl.Int64 if c in _INTS else pl.Float64) for c in RESULT_COLUMNS}
    )


def conform(table: pl.DataFrame) -> pl.DataFrame:
    """The results columns in order; a column an older partition lacks is null, not invented."""
    missing = [pl.lit(None).alias(c) for c in RESULT_COLUMNS if c not in table.columns]
    return table.with_columns(missing).select(RESULT_COLUMNS)


def rows_to_table(rows: list[dict], dataset: str, model: str) -> pl.DataFrame:
    keep = set(RESULT_COLUMNS)
    table = pl.DataFrame(
        [
            {k: v for k, v in {"dataset": dataset, "model": model, **r}.items() if k in keep}
            for r in rows
        ]
    )
    if table.height == 0:
        return empty_results()
    return table.select(RESULT_COLUMNS)


# The planned rows that are not in the results table because their method cannot be built on
# the pair's corpus (PQ's k-means on fewer passages than centroids, say), each with the reason:
# results/skipped_methods.parquet beside the results table, and the report's "Skipped" section.
# A table of its own, so the results table keeps numbers in every metric column.
SKIPPED_COLUMNS = ["dataset", "model", "method", "bits", "reason"]
_SKIPPED_TYPES = {**_TYPES, "reason": pl.String}


def skipped_table(skipped: dict[tuple[str, str, str, int], str]) -> pl.DataFrame:
    """{(dataset, model, method, bits): reason} as the skipped-rows table, sorted by its key;
    typed the same with or without rows."""
    schema = {c: _SKIPPED_TYPES[c] for c in SKIPPED_COLUMNS}
    rows = [(*key, reason) for key, reason in sorted(skipped.items())]
    return pl.DataFrame(rows, schema=schema, orient="row")
