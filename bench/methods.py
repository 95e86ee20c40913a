"""Every registered method at the plan's scale: build and search seconds, peak RSS, recall.

``python -m bench --only methods`` writes one synthetic partition (500K x 768 by default,
``bench/synthetic.py``), its exact top-100 (``exact_search.float_topk``, as the study computes
its ground truth), then builds and searches every registered method at every budget the plan
gives it (binary 64-512 bits, PQ 8-64 bytes, the reference methods at the model's dimension)
through the study's one route (``Method.build``, ``evaluation.search_and_score``), each
(method, budget) in a fresh interpreter so that its peak RSS is its own.

Targets per method: the worst over its budgets of (build + search seconds) / PQ's at the same
bytes (PQ at the plan's largest size not above the method's bytes: a 768-byte int8 index is set
against PQ at 64 bytes, the most PQ the plan builds) and of peak RSS / the float32 matrix.
``projection`` turns the measured seconds into hours for the whole plan (``study.yaml``).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from bench import child, synthetic

BITS = (64, 128, 256, 512)
PQ_BYTES = (8, 16, 32, 64)
K = 100


def _plan():
    from phase2_assets.compute.methods import Plan

    return Plan(frozenset(BITS), frozenset(PQ_BYTES))


ADAPTER = "adapter"  # X3's adapter: not in the registry, but trained at the same scale


def method_named(name: str):
    from phase2_assets.compute.analysis.adapter import AdapterConfig, AdapterMethod
    from phase2_assets.compute.methods import METHODS, Settings

    if name == ADAPTER:  # the study's first adapter config, seeded as X3 seeds it
        return AdapterMethod(AdapterConfig(), seed=Settings().projection_seed)
    return METHODS[name]


def budgets(method, dim: int) -> list[int | None]:
    if method.name == ADAPTER:
        from phase2_assets.config.study import ExploratoryConfig

        return [b for b in ExploratoryConfig().adapter_bits if b <= dim]
    if method.budget == "reference":
        return [None] if method.fits(dim, None) else []
    wanted = sorted({*BITS, *(8 * m for m in PQ_BYTES)})
    return [b for b in wanted if method.applies(dim, b, _plan())]


def prepare(workdir: Path, n: int, dim: int, n_queries: int) -> dict:
    """The vectors (written through a memory map, whose dirty pages count as this process's
    RSS: the ground truth is measured in a process of its own, ``truth``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sources = synthetic.write_vectors(
        workdir / "corpus.npy", workdir / "queries.npy", n=n, dim=dim, n_queries=n_queries
    )
    np.save(workdir / "sources.npy", sources, allow_pickle=False)
    return {"n": n, "dim": dim, "n_queries": n_queries}


def truth(workdir: Path) -> dict:
    """The exact top-K as the study's ground-truth step computes it: float32's own row."""
    from phase2_assets.compute.search.exact_search import float_topk

    corpus = np.load(workdir / "corpus.npy", mmap_mode="r", allow_pickle=False)
    queries = np.load(workdir / "queries.npy", allow_pickle=False)
    t0 = time.perf_counter()
    scores, ids = float_topk(queries, corpus, K)
    seconds = time.perf_counter() - t0
    sources = np.load(workdir / "sources.npy", allow_pickle=False)
    np.savez(workdir / "truth.npz", ids=ids, scores=scores, sources=sources)
    return {"ground_truth_seconds": seconds}


def run_one(workdir: Path, name: str, bits: int | None) -> dict:
    """One method at one budget, as the study's evaluation assets build and score it."""
    from phase2_assets.compute.methods import Settings
    from phase2_assets.compute.search import evaluation

    method = method_named(name)
    corpus = np.load(workdir / "corpus.npy", mmap_mode="r", allow_pickle=False)
    queries = np.load(workdir / "queries.npy", allow_pickle=False)
    truth = np.load(workdir / "truth.npz", allow_pickle=False)
    refs = evaluation.References(
        truth_ids=truth["ids"],
        truth_scores=truth["scores"],
        qrels=[{int(s): 1.0} for s in truth["sources"]],
        n_docs=len(corpus),
    )
    settings = Settings()
    t0 = time.perf_counter()
    built = method.build(corpus, bits, settings)
    build_seconds = time.perf_counter() - t0
    train = getattr(built.training, "train_seconds", None)
    row = evaluation.search_and_score(method, built, queries, refs, bits=bits, settings=settings)
    del built
    gc.collect()
    return {
        "method": name,
        "budget": bits,
        "bits": row["bits"],
        "bytes_per_vector": row["bytes_per_vector"],
        "build_seconds": build_seconds,
        "train_seconds": train,
        "search_seconds": row["search_seconds"],
        "recall_at_10": row["recall_at_10"],
    }


def _child(*args: str) -> dict:
    return child("bench.methods", *args)


def pq_baseline(rows: list[dict], bytes_per_vector: float) -> dict:
    """PQ's row at the plan's largest size not above ``bytes_per_vector`` (8 bytes at least)."""
    pq = {r["bytes_per_vector"]: r for r in rows if r["method"] == "pq"}
    fitting = [b for b in pq if b <= bytes_per_vector] or [min(pq)]
    return pq[max(fitting)]


def compare(workdir: Path, n: int, dim: int, n_queries: int, log=print, names=None) -> dict:
    """Every registered method and X3's adapter (or ``names``, PQ always among them: the
    baseline)."""
    from phase2_assets.compute.methods import METHODS

    chosen = (set(names) | {"pq"}) if names else {*METHODS, ADAPTER}

    prepared = _child("prepare", str(workdir), str(n), str(dim), str(n_queries))
    prepared.update(_child("truth", str(workdir)))
    log(f"# methods: {n:,} x {dim}, ground truth {prepared['ground_truth_seconds']:.1f} s")
    # float32 is the ground truth itself (no index of its own): its row is that step.
    rows = [
        {
            "method": "float32",
            "budget": None,
            "bits": 32 * dim,
            "bytes_per_vector": 4.0 * dim,
            "build_seconds": 0.0,
            "train_seconds": None,
            "search_seconds": prepared["ground_truth_seconds"],
            "recall_at_10": 1.0,
            "peak_rss_bytes": prepared["peak_rss_bytes"],
        }
    ]
    for name in sorted(chosen - {"float32"}, key=lambda m: (m != "pq", m)):  # PQ first
        for bits in budgets(method_named(name), dim):
            row = _child("one", str(workdir), name, str(bits))
            rows.append(row)
            log(
                f"# {name}@{row['bits']}: build {row['build_seconds']:.1f} s, search "
                f"{row['search_seconds']:.1f} s, peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB, "
                f"recall_at_10 {row['recall_at_10']:.3f}"
            )
    matrix = n * dim * 4
    for row in rows:
        base = pq_baseline(rows, row["bytes_per_vector"])
        row["pq_bytes"] = base["bytes_per_vector"]
        row["time_ratio"] = (row["build_seconds"] + row["search_seconds"]) / (
            base["build_seconds"] + base["search_seconds"]
        )
        row["rss_ratio"] = row["peak_rss_bytes"] / matrix
    return {**prepared, "matrix_bytes": matrix, "rows": rows}


def main(argv: list[str]) -> None:
    phase, workdir = argv[0], Path(argv[1])
    if phase == "prepare":
        out = prepare(workdir, *(int(a) for a in argv[2:5]))
    elif phase == "truth":
        out = truth(workdir)
    else:
        out = run_one(workdir, argv[2], None if argv[3] == "None" else int(argv[3]))
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("BENCH_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])


# The plan's collections at study scale: corpus rows after the study's sampling (study.yaml's
# sample_size, SciFact whole) and the split's query count as BEIR publishes it.
PLAN_COLLECTIONS = {"msmarco": (500_000, 6_980), "nq": (500_000, 3_452), "scifact": (5_183, 300)}


def projection(measured: dict, study_name: str = "study") -> dict:
    """Hours the plan's every (dataset, model, method, bits) row would take on this machine after
    embedding, from the rows measured here: training scales with the dimension (its sample is
    capped at ``pq.train_size``), adding with rows x dimension, searching with rows x queries
    (x dimension for the reference methods, whose codes grow with it)."""
    from phase2_assets.compute.methods import METHODS
    from phase2_assets.config import load_study, plan

    study = load_study(study_name)
    n0, d0, q0 = measured["n"], measured["dim"], measured["n_queries"]
    cap = study.pq.train_size
    by = {}
    for r in measured["rows"]:
        reference = r["method"] in METHODS and METHODS[r["method"]].budget == "reference"
        by[(r["method"], None if reference else r["bits"])] = r
    seconds: dict[str, float] = {}
    missing = set()
    planned = plan.planned_result_rows(study)
    for dataset, model, name, bits in planned:
        n, nq = PLAN_COLLECTIONS[dataset]
        d = study.models[model].dim
        reference = METHODS[name].budget == "reference"
        row = by.get((name, None if reference else bits))
        if row is None:
            missing.add((name, bits))
            continue
        train = row["train_seconds"] or 0.0
        add = max(row["build_seconds"] - train, 0.0)
        t = train * (d / d0) * min(n, cap) / min(n0, cap)
        t += add * (n / n0) * (d / d0)
        t += row["search_seconds"] * (n / n0) * (nq / q0) * ((d / d0) if reference else 1.0)
        seconds[name] = seconds.get(name, 0.0) + t
    for pair in study.adapter_pairs():  # X3: each adapter config at each adapter bit length
        dataset, model = pair.split("__", 1)
        n, nq = PLAN_COLLECTIONS[dataset]
        d = study.models[model].dim
        for bits in study.exploratory.adapter_bits:
            row = by.get((ADAPTER, bits))
            if row is None:
                missing.add((ADAPTER, bits))
                continue
            t = row["build_seconds"] * (d / d0) + row["search_seconds"] * (n / n0) * (nq / q0)
            t *= len(study.exploratory.adapters)
            seconds[ADAPTER] = seconds.get(ADAPTER, 0.0) + t
    return {
        "hours_by_method": {m: s / 3600 for m, s in sorted(seconds.items())},
        "hours": sum(seconds.values()) / 3600,
        "rows": len(planned),
        "not_measured": sorted(missing, key=str),
    }


def markdown(measured: dict, projected: dict) -> str:
    """The table for bench/RESULTS.md: per method, its worst ratios and its range of timings."""
    lines = [
        "| method | budgets (bits) | build s | search s | time / PQ (worst) | peak RSS / matrix "
        "(worst) | recall_at_10 | plan hours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    methods: dict[str, list[dict]] = {}
    for r in measured["rows"]:
        methods.setdefault(r["method"], []).append(r)

    def span(values, fmt="{:.1f}"):
        lo, hi = min(values), max(values)
        return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}–{fmt.format(hi)}"

    for name, rows in methods.items():
        lines.append(
            f"| {name} | {', '.join(str(r['bits']) for r in rows)} | "
            f"{span([r['build_seconds'] for r in rows])} | "
            f"{span([r['search_seconds'] for r in rows])} | "
            f"{max(r['time_ratio'] for r in rows):.2f} | {max(r['rss_ratio'] for r in rows):.2f} | "
            f"{span([r['recall_at_10'] for r in rows], '{:.3f}')} | "
            f"{projected['hours_by_method'].get(name, 0.0):.2f} |"
        )
    return "\n".join(lines)
