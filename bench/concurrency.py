"""Two OPQ trainings at once through the product's own concurrency, against one alone.

Two (dataset, model) pairs of the same synthetic vectors, each with OPQ as its only method beyond
the plan, and a ``dagster dev`` (webserver + daemon) on a temporary instance that lets two runs
and two ``memory_heavy`` steps proceed at once. Measured from the runs' own start and end times
(``bits_job`` at 512 bits: PQ and OPQ with 64 sub-quantisers, their searches and checks):

- *alone*: one run, tagged ``phase2/threads`` = every core (the machine to itself);
- *shared*: both runs launched together, each step taking its share (cores / 2 runs);
- *oversubscribed*: both together, each step with every core (the product before the share).

``concurrent_training_ratio`` = shared / alone: fair sharing of the cores gives about 2, and the
spinning threads of an oversubscribed pair gave far more.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench import synthetic

N, DIM, N_QUERIES, BITS = 10_000, 384, 200, 512
PAIRS = ("a__encoder", "b__encoder")


def _study(work: Path) -> dict:
    beir = str(work / "beir")
    return {
        "name": "bench_concurrency",
        "description": "Two identical synthetic pairs, OPQ only, for the concurrency benchmark.",
        "datasets": {"a": {"path": beir, "split": "test"}, "b": {"path": beir, "split": "test"}},
        "models": {"encoder": {"name": "bench/synthetic-encoder", "dim": DIM}},
        "tiers": {
            "core": {
                "datasets": ["a", "b"],
                "models": ["encoder"],
                "bits": [BITS],
                "pq_bytes": [BITS // 8],
            }
        },
        "methods": {"extra": ["opq"]},
    }


def prepare(work: Path) -> None:
    """Vectors for both pairs, then their collections, ground truth and qrels in process."""
    import dagster as dg

    from phase2_assets.config import load_study
    from phase2_assets.defs.build import build_definitions

    data = work / "data"
    for asset in ("corpus_embeddings", "query_embeddings"):
        (data / asset).mkdir(parents=True, exist_ok=True)
    first, *others = PAIRS
    sources = synthetic.write_vectors(
        data / "corpus_embeddings" / f"{first}.npy",
        data / "query_embeddings" / f"{first}.npy",
        n=N,
        dim=DIM,
        n_queries=N_QUERIES,
    )
    for pair in others:
        for asset in ("corpus_embeddings", "query_embeddings"):
            shutil.copyfile(data / asset / f"{first}.npy", data / asset / f"{pair}.npy")
    synthetic.write_beir(work / "beir", N, sources)
    (work / "study.yaml").write_text(yaml.safe_dump(_study(work)))
    defs = build_definitions(load_study(str(work / "study.yaml")), str(data))
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    levels = [(["corpus", "queries", "qrels"], d) for d in ("a", "b")]
    levels += [(["float_ground_truth", "evaluation_qrels"], p) for p in PAIRS]
    for selection, key in levels:
        dg.materialize(
            list(defs.assets),
            selection=selection,
            partition_key=key,
            resources=dict(defs.resources),
            run_config=quiet,
        )


def _wall(server, run_ids: list[str]) -> float:
    stats = [
        server.graphql(
            "query R($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime "
            "endTime } } }",
            {"id": run_id},
        )["runOrError"]
        for run_id in run_ids
    ]
    if any(s["status"] != "SUCCESS" for s in stats):
        raise RuntimeError(f"benchmark runs did not succeed: {stats}")
    return max(s["endTime"] for s in stats) - min(s["startTime"] for s in stats)


def _run(server, tags: dict[str, str] | None, pairs=PAIRS) -> float:
    ids = [server.launch("bits_job", f"{BITS}|{pair}", tags) for pair in pairs]
    for run_id in ids:
        server.wait(run_id, timeout=3600)
    return _wall(server, ids)


def compare(workdir: Path) -> dict:
    import os

    from phase2_assets.cli.instance import write_local_config
    from phase2_assets.defs.execution.cpu_share import THREADS_TAG
    from phase2_assets.testing.dagster_dev import dagster_dev

    work = workdir / "concurrency"
    work.mkdir(parents=True, exist_ok=True)
    prepare(work)
    home = work / "dagster_home"
    write_local_config(home)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PHASE2_STUDY": str(work / "study.yaml"),
        "PHASE2_DATA_DIR": str(work / "data"),
        "PHASE2_EXECUTOR": "in_process",
    }
    env.pop("PHASE2_THREADS", None)
    subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "concurrency", "set", "memory_heavy", "2"],
        env=env,
        check=True,
        capture_output=True,
    )
    cores = str(os.cpu_count() or 1)
    with dagster_dev(work, env) as server:
        alone = _run(server, {THREADS_TAG: cores}, pairs=PAIRS[:1])
        time.sleep(2)
        shared = _run(server, None)
        time.sleep(2)
        oversubscribed = _run(server, {THREADS_TAG: cores})
    return {
        "alone_seconds": alone,
        "shared_seconds": shared,
        "oversubscribed_seconds": oversubscribed,
        "ratio": shared / alone,
        "oversubscribed_ratio": oversubscribed / alone,
    }
