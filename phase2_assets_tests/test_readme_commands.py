"""The documented `dagster asset materialize`, `dagster job launch` / `backfill` and
`dagster sensor start` commands work as written.

The blocks after ``<!-- docs-commands:materialize -->`` and ``<!-- docs-commands:jobs -->`` in
docs/running.md are run command by command in bash, from the repository root; the jobs block
against ``dagster dev`` (whose daemon starts the queued runs). Only the study behind
``$PHASE2_STUDY`` is swapped for a tiny one with the demo's names (dataset ``scifact``, model
``minilm``, tier ``demo``), so the same partition keys exist and the runs take seconds. Each line
must exit 0 and every run it queues must succeed before the next line runs. Slow: about three
minutes, most of it `dagster dev` and its daemon.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phase2_assets.testing.dagster_dev import ROOT, dagster_dev, dagster_env, demo_named_study
from phase2_assets.testing.recipes import doc_block

pytestmark = pytest.mark.slow


def readme_commands(block_name: str) -> list[str]:
    """The commands of one marked bash block of docs/running.md: comments and exports dropped
    (the test sets the environment), backslash continuations joined."""
    block = doc_block("running.md", f"docs-commands:{block_name}", "bash")
    block = block.replace("\\\n", " ")
    return [
        line
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "export "))
    ]


def _run(command: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {command}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def _env(tmp_path: Path, tiny_beir, tiny_model) -> dict[str, str]:
    study = demo_named_study(tmp_path / "demo.yaml", tiny_beir, tiny_model)
    env = dagster_env(tmp_path, study)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # dagster, phase2
    return env


def test_the_readme_asset_materialize_commands_run_as_written(tmp_path, tiny_beir, tiny_model):
    commands = readme_commands("materialize")
    assert len(commands) == 4 and all(c.startswith("dagster asset materialize") for c in commands)
    env = _env(tmp_path, tiny_beir, tiny_model)
    for command in commands:
        _run(command, env)
    data = tmp_path / "data"
    assert (data / "binary_codes" / "scifact__minilm" / "256.npy").exists()
    assert (data / "pq_index" / "scifact__minilm" / "256.faiss").exists()
    assert (data / "results" / "retrieval_metrics.parquet").exists()


def test_the_readme_commands_run_as_written(tmp_path, tiny_beir, tiny_model):
    commands = readme_commands("jobs")
    assert any(c.startswith("dagster job launch") for c in commands)
    assert any(c.startswith("dagster job backfill") for c in commands)
    env = _env(tmp_path, tiny_beir, tiny_model)
    with dagster_dev(tmp_path, env) as server:
        for command in commands:
            _run(command, env)
            runs = server.wait_for_all_runs()
            failed = [r for r in runs if r["status"] != "SUCCESS"]
            assert not failed, f"after `{command}`: {failed}"
        # The tier sensor started by the last line: the daemon ticks it and finds the tier done.
        tick = server.wait_for_sensor_tick("demo")
        assert tick["status"] == "SKIPPED" and tick["skipReason"] == "demo is complete", tick

    launched = sorted((r["job"], r["partition"] or "") for r in runs)
    assert launched == sorted(
        [
            ("dataset_job", "scifact"),
            ("pair_job", "scifact__minilm"),
            ("bits_job", "256|scifact__minilm"),
            ("bits_job", "64|scifact__minilm"),  # the tier backfill
            ("bits_job", "256|scifact__minilm"),
            ("bits_job", "64|scifact__minilm"),  # --all
            ("bits_job", "256|scifact__minilm"),
            ("adapter_job", "scifact__minilm"),
            ("results_job", ""),
        ]
    )
    data = tmp_path / "data"
    assert (data / "binary_codes" / "scifact__minilm" / "256.npy").exists()
    assert (data / "results" / "report.html").exists()


# A run process killed outright while its step held the memory_heavy pool's one slot: what
# `kill -9` of `dagster asset materialize` during pq_index leaves (the run STARTED, its events
# written by a process that is gone, the slot claimed).
KILLED_RUN = """
import os, signal, sys, uuid
import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData

instance = dg.DagsterInstance.get()
run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()),
                    status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": sys.argv[1]})
instance.run_storage.add_run(run)
instance.report_dagster_event(
    DagsterEvent(DagsterEventType.ENGINE_EVENT.value, job_name=run.job_name,
                 message="pq_index started", event_specific_data=EngineEventData(),
                 pid=os.getpid()),
    run_id=run.run_id,
)
storage = instance.event_log_storage
storage.initialize_concurrency_limit_to_default("memory_heavy")
assert storage.claim_concurrency_slot("memory_heavy", run.run_id, "pq_index").is_claimed
print(run.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_slot_held_by_a_killed_run_does_not_hang_the_readme_command(
    tmp_path, tiny_beir, tiny_model
):
    """Before: the documented pq_index line logged only a DEBUG "Step blocked by limit for pool
    memory_heavy" and waited forever on the dead run's slot. Now the run's IO managers, which start
    before any step claims a slot, mark the dead run failed and free its slot; the line finishes
    well within 60 s."""
    import dagster as dg

    commands = readme_commands("materialize")
    env = _env(tmp_path, tiny_beir, tiny_model)
    for command in commands[:2]:  # the dataset and the pair, as a researcher runs them
        _run(command, env)
    key = "256|scifact__minilm"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, key], env=env, capture_output=True, text=True
    )
    assert killed.returncode == -9, killed.stderr
    run_id = killed.stdout.strip()

    done = subprocess.run(
        ["bash", "-c", commands[2]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"phase2: marked run {run_id} failed" in done.stderr
    assert (tmp_path / "data" / "pq_index" / "scifact__minilm" / "256.faiss").exists()
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert run_id not in instance.event_log_storage.get_concurrency_run_ids()
