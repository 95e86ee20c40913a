"""The post-embedding Core study on one synthetic partition: through Dagster, and bare.

``study`` materialises the Core assets after E1 (float ground truth, int8, the instrument at every
bit length, PQ at every size, their metrics and checks) exactly as ``phase2 run`` does: one run per
partition, files written atomically and checksummed. ``bare`` makes the same faiss/numpy calls a
researcher would write by hand, with no Dagster, checks or files. ``ground_truth`` runs the
float ground-truth step alone, every registered method enabled in the config. Each phase runs
in its own process (``python -m bench.study PHASE WORKDIR``) and prints its seconds and peak RSS
as JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from bench import synthetic

PAIR = "synthetic__encoder"
BITS = (64, 128, 256, 512)
PQ_BYTES = (8, 16, 32, 64)
K = 100


def study_config(workdir: Path, dim: int) -> dict:
    return {
        "name": "bench",
        "description": "Synthetic partition for the post-embedding benchmark.",
        "datasets": {"synthetic": {"path": str(workdir / "beir"), "split": "test"}},
        "models": {"encoder": {"name": "bench/synthetic-encoder", "dim": dim}},
        "tiers": {
            "core": {
                "datasets": ["synthetic"],
                "models": ["encoder"],
                "bits": list(BITS),
                "pq_bytes": list(PQ_BYTES),
            }
        },
        "methods": {"extra": []},
    }


def _defs(workdir: Path, config: str = "study.yaml"):
    from phase2_assets.config import load_study
    from phase2_assets.defs.build import build_definitions

    study = load_study(str(workdir / config))
    return build_definitions(study, str(workdir / "data"))


def post_embedding(defs) -> dict[str, list[str]]:
    """The Core assets after E1 at the pair and bit levels, read from where each asset says it
    sits in the plan (its group and experiment tag) and the job of its partition level."""
    from phase2_assets.defs.graph.groups import CORE, EXPERIMENT_TAG
    from phase2_assets.defs.graph.jobs import LEVEL_JOBS

    specs = {key: spec for a in defs.assets for key, spec in a.specs_by_key.items()}
    out = {}
    for level in ("pair", "bits"):
        keys = defs.resolve_job_def(LEVEL_JOBS[level][0]).asset_layer.selected_asset_keys
        out[level] = sorted(
            key.to_user_string()
            for key in keys
            if specs[key].group_name == CORE and specs[key].tags[EXPERIMENT_TAG] != "E1"
        )
    return out


def _materialize(defs, selection, partition_key):
    import dagster as dg

    result = dg.materialize(
        assets=list(defs.assets),
        selection=selection,
        partition_key=partition_key,
        resources=dict(defs.resources),
        raise_on_error=True,
    )
    return result


def prepare(workdir: Path, n: int, dim: int, n_queries: int) -> dict:
    """Vectors, a BEIR folder in the same row order, the collection assets, E1's files in place."""
    data = workdir / "data"
    for asset in ("corpus_embeddings", "query_embeddings"):
        (data / asset).mkdir(parents=True, exist_ok=True)
    sources = synthetic.write_vectors(
        data / "corpus_embeddings" / f"{PAIR}.npy",
        data / "query_embeddings" / f"{PAIR}.npy",
        n=n,
        dim=dim,
        n_queries=n_queries,
    )
    synthetic.write_beir(workdir / "beir", n, sources)
    config = study_config(workdir, dim)
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    (workdir / "every_method.yaml").write_text(yaml.safe_dump({**config, "methods": {}}))
    _materialize(_defs(workdir), ["corpus", "queries", "qrels"], "synthetic")
    return {"n": n, "dim": dim, "n_queries": n_queries}


def run_study(workdir: Path) -> dict:
    """The pair and bit partitions of the study's plan, after E1 (whose files are in place)."""
    from phase2_assets.config import load_study, plan

    defs = _defs(workdir)
    study = load_study(str(workdir / "study.yaml"))
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    selection = post_embedding(defs)
    runs = [_materialize(defs, selection["pair"], p) for p in plan.partition_keys(study, "pair")]
    for key in plan.partition_keys(study, "bits"):
        runs.append(_materialize(defs, selection["bits"], key))
    seconds = time.perf_counter() - t0
    for run in runs:  # where the time went, step by step (summed over bit lengths)
        for event in run.get_step_success_events():
            ms = event.event_specific_data.duration_ms
            steps[event.step_key] = steps.get(event.step_key, 0.0) + ms / 1000
    import polars as pl

    data = workdir / "data"
    tables = []
    for name in ("reference_metrics", *(f"{m}_metrics" for m in study.methods.store)):
        files = [data / name / f"{PAIR}.parquet", *sorted((data / name / PAIR).glob("*.parquet"))]
        tables += [pl.read_parquet(p) for p in files if p.is_file()]
    table = pl.concat(tables, how="diagonal_relaxed").sort("method", "bits")
    recall = {f"{r['method']}@{r['bits']}": r["recall_at_10"] for r in table.iter_rows(named=True)}
    return {"seconds": seconds, "recall_at_10": recall, "step_seconds": steps}


def run_bare(workdir: Path) -> dict:
    """The same work with faiss and numpy alone (adding in the same blocks: one unblocked
    ``IndexPQ.add`` of 1M x 768 needs 8 GiB of faiss scratch, see ``pq_encode_block``)."""
    import faiss
    import polars as pl

    from phase2_assets.compute.methods.quantizers import add_in_blocks, pq_encode_block
    from phase2_assets.compute.search import metrics

    data = workdir / "data"
    corpus = np.load(data / "corpus_embeddings" / f"{PAIR}.npy", mmap_mode="r", allow_pickle=False)
    queries = np.load(data / "query_embeddings" / f"{PAIR}.npy", allow_pickle=False)
    n, dim = corpus.shape
    rng = np.random.default_rng(7)
    train = corpus[np.sort(rng.choice(n, size=min(n, 65536), replace=False))]
    judged = pl.read_parquet(data / "qrels" / "synthetic.parquet")
    source = dict(zip(judged["query_id"], judged["doc_id"], strict=True))
    order = pl.read_parquet(data / "queries" / "synthetic.parquet")["query_id"]
    qrels = [{int(source[q][1:]): 1.0} for q in order]  # passage "d{row}" is corpus row
    recall, phases = {}, {}
    t0 = time.perf_counter()
    truth_scores, truth = faiss.knn(queries, corpus, K, metric=faiss.METRIC_INNER_PRODUCT)
    phases["float_ground_truth"] = time.perf_counter() - t0

    def score(name, ids):
        recall[name] = metrics.retrieval_metrics(ids, truth, truth_scores, qrels)["recall_at_10"]

    score(f"float32@{32 * dim}", truth)
    int8 = faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    int8.train(train)
    add_in_blocks(int8, corpus, 65536)
    score(f"int8@{8 * dim}", int8.search(queries, K)[1])
    del int8
    phases["int8"] = time.perf_counter() - t0 - sum(phases.values())
    for bits in BITS:
        proj = np.random.default_rng(42).standard_normal((bits, dim)).astype(np.float32).T.copy()
        codes = np.empty((n, bits // 8), dtype=np.uint8)
        for s in range(0, n, 65536):
            codes[s : s + 65536] = np.packbits(
                corpus[s : s + 65536] @ proj > 0, axis=1, bitorder="little"
            )
        index = faiss.IndexBinaryFlat(bits)
        index.add(codes)
        q_codes = np.packbits(queries @ proj > 0, axis=1, bitorder="little")
        score(f"binary@{bits}", index.search(q_codes, K)[1])
    phases["binary"] = time.perf_counter() - t0 - sum(phases.values())
    for m in PQ_BYTES:
        pq = faiss.IndexPQ(dim, m, 8, faiss.METRIC_INNER_PRODUCT)
        pq.train(train)
        add_in_blocks(pq, corpus, pq_encode_block(m, 8, 65536))
        score(f"pq@{8 * m}", pq.search(queries, K)[1])
    phases["pq"] = time.perf_counter() - t0 - sum(phases.values())
    return {"seconds": time.perf_counter() - t0, "recall_at_10": recall, "phase_seconds": phases}


def run_ground_truth(workdir: Path) -> dict:
    """The float ground-truth step alone, every registered method enabled, in its own process:
    its peak RSS is the step's own (the study's largest after E1)."""
    defs = _defs(workdir, "every_method.yaml")
    t0 = time.perf_counter()
    _materialize(defs, ["float_ground_truth"], PAIR)
    return {"seconds": time.perf_counter() - t0}


PHASES = {"study": run_study, "bare": run_bare, "ground_truth": run_ground_truth}


def main(argv: list[str]) -> None:
    phase, workdir = argv[0], Path(argv[1])
    if phase == "prepare":
        n, dim, n_queries = (int(a) for a in argv[2:5])
        out = prepare(workdir, n, dim, n_queries)
    else:
        out = PHASES[phase](workdir)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("BENCH_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
