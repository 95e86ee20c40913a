"""The tiny study on the whole stack, hands off: PostgreSQL, Redis, an S3 endpoint, the code
server, the daemon, the webserver and three Celery workers, every one a real server on
127.0.0.1. The test only switches the tier sensors on; the daemon runs the study to its report,
steps on the workers, files in the bucket. Every file under its ``results/`` equals a plain
local ``phase2 run`` of the same study byte for byte (the ledger's measured hours aside)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from phase2_assets.testing import stack as st

pytestmark = [pytest.mark.slow, pytest.mark.stack]

STACK_VARS = (
    "PHASE2_STORAGE_URL",
    "PHASE2_EXECUTOR",
    "PHASE2_CELERY_BROKER",
    "DAGSTER_HOME",
    "AWS_ENDPOINT_URL",
)


@pytest.fixture(scope="session")
def local_run(tmp_path_factory, stack_study):
    """The same study through a plain local ``phase2 run`` (SQLite instance, local folder)."""
    root = tmp_path_factory.mktemp("local_phase2_run")
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARS}
    env["DAGSTER_HOME"] = str(root / "home")
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("phase2")), "run", str(stack_study)]
        + ["--data-dir", str(root / "data")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / "data", time.perf_counter() - t0


def _ledger_without_hours(data: bytes) -> pl.DataFrame:
    table = pl.read_parquet(io.BytesIO(data))
    return table.drop([c for c in table.columns if "hour" in c or "seconds" in c])


def test_the_daemon_runs_the_whole_study_on_the_workers(stack, hands_off, local_run):
    instance = stack.instance
    runs = hands_off.runs(instance)  # launched by the sensors through the queue
    bits = len(st.STACK_TIER["bits"])
    # The dataset, the pair, each bit partition, the adapter, the kill-switch tables and the rest.
    assert len(runs) == 1 + 1 + bits + 1 + 2, st.runs_summary(instance)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), st.runs_summary(instance)
    assert not [r for r in instance.get_runs() if r.tags.get("phase2/runs_at_once")]  # no phase2
    jobs = {r.job_name for r in runs}
    assert {"dataset_job", "pair_job", "bits_job", "results_job"} <= jobs

    # Each step ran on a worker: the embedding pool's (the encoder, X3's adapter) on the GPU
    # box's queue, every other step on the CPU boxes'.
    where: dict[str, set[str]] = {}
    for run in runs:
        for step, worker in st.worker_of_steps(instance, run.run_id).items():
            where.setdefault(step, set()).add(worker.split("@")[0])
    gpu_steps = {"embeddings", "adapter_metrics"}
    assert gpu_steps <= set(where)
    assert set().union(*(where[s] for s in gpu_steps)) == {"gpu"}
    assert set().union(*(w for s, w in where.items() if s not in gpu_steps)) == {"cpu1", "cpu2"}

    # The pools' limits (1 each) held across the workers: no two steps of a pool at once.
    heavy = {"float_ground_truth", "int8_index", "reference_metrics", "pq_index", "method_metrics"}
    assert st.overlapping(st.step_intervals(instance, heavy)) == []
    assert st.overlapping(st.step_intervals(instance, gpu_steps)) == []

    # Every file under results/ equals the local run's, byte for byte (the ledger's hours aside).
    stored = st.bucket_files(f"{stack.stack.storage_url}/results")
    local_data, _ = local_run
    local = st.local_files(local_data / "results")
    assert sorted(stored) == sorted(local)
    differ = [
        name
        for name in stored
        if stored[name] != local[name] and not name.startswith("budget_ledger")
    ]
    assert differ == []
    ledger = "budget_ledger.parquet"
    assert _ledger_without_hours(stored[ledger]).equals(_ledger_without_hours(local[ledger]))


def test_nothing_reads_or_writes_the_launching_machines_data_folder(stack, hands_off):
    folder = stack.stack
    assert not (folder.launcher_folder / "data").exists()
    for name in ("gpu", "cpu1", "cpu2"):
        data = folder.worker_folder(name) / "data"
        seen = {p.relative_to(data).parts[0] for p in data.rglob("*")} if data.exists() else set()
        assert seen <= {".cache", ".staging", "downloads"}, (name, seen)
