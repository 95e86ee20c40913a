"""Faults on the running stack, after the hands-off study (the ``hands_off`` fixture): a worker
killed with SIGKILL in the middle of a step, the S3 endpoint refusing a PUT mid-run, PostgreSQL
restarted while the daemon runs, and two studies queued at once. Each ends with nothing lost,
nothing half-written read back and no pool slot held."""

from __future__ import annotations

import signal
import time

import dagster as dg
import pytest

from phase2_assets.defs.execution import pools
from phase2_assets.testing import stack as st
from phase2_assets.testing.tiny import write_tiny_study

pytestmark = [pytest.mark.slow, pytest.mark.stack]

PAIR = "tiny__tiny-bert"
NO_RETRY = {"dagster/max_retries": "0"}  # the instance retries failed runs once; not these


def _objects(stack, prefix: str) -> dict[str, bytes]:
    return st.bucket_files(f"{stack.stack.storage_url}/{prefix}")


def _no_slot_held(instance: dg.DagsterInstance) -> None:
    for pool in pools.POOLS:
        info = instance.event_log_storage.get_concurrency_info(pool)
        assert info.claimed_slots == [] and info.pending_steps == [], (pool, info)


def test_a_worker_killed_mid_step_is_retried_on_another_and_nothing_is_lost(stack, hands_off):
    """SIGKILL to a whole worker (its process group, as a machine that loses power) while its
    step is storing the PQ index: the task was not acknowledged, so Redis hands it to the other
    CPU worker once the visibility timeout has passed (120 s here), and the same run completes."""
    instance, proxy = stack.instance, stack.proxy
    before = _objects(stack, f"pq_index/{PAIR}")
    proxy.hold_puts(r"/pq_index/")
    try:
        run_id = st.launch(stack.stack, "bits_job", f"64|{PAIR}", **NO_RETRY)
        st.wait_for(lambda: proxy.held, 180, "the PQ index's upload to be held")
        killed = st.worker_of_steps(instance, run_id)["pq_index"].split("@")[0]
        stack.stack.servers[f"worker_{killed}"].kill()
    finally:
        proxy.hold_puts(None, drop_held=True)  # the dead worker's upload never arrives
    try:
        run = st.finished(instance, run_id, timeout_s=480)
        assert run.status == dg.DagsterRunStatus.SUCCESS, st.step_failures(instance, run_id)
        executions = [
            r.dagster_event.engine_event_data.metadata["Celery worker"].value.split("@")[0]
            for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if r.dagster_event.step_key == "pq_index"
            and "Celery worker" in r.dagster_event.engine_event_data.metadata
        ]
        assert executions[0] == killed and executions[-1] != killed, executions
        assert _objects(stack, f"pq_index/{PAIR}") == before  # the same index, whole
        _no_slot_held(instance)
    finally:
        stack.stack.servers[f"worker_{killed}"].start(timeout_s=180)


def test_a_refused_put_fails_the_run_naming_the_object_and_a_reexecution_completes(
    stack, hands_off
):
    instance, proxy = stack.instance, stack.proxy
    before = _objects(stack, f"binary_metrics/{PAIR}")
    proxy.refuse_puts(r"/binary_metrics/")
    try:
        failed_id = st.launch(stack.stack, "bits_job", f"8|{PAIR}", **NO_RETRY)
        failed = st.finished(instance, failed_id)
    finally:
        proxy.refuse_puts(None)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    (message,) = st.step_failures(instance, failed_id)
    key = f"{stack.stack.storage_url}/binary_metrics/{PAIR}/8.parquet"
    assert f"upload of {key} failed" in message and "Access Denied" in message, message
    assert _objects(stack, f"binary_metrics/{PAIR}") == before  # the stored object untouched
    _no_slot_held(instance)

    again = st.finished(instance, st.reexecute_from_failure(stack.stack, failed_id))
    assert again.status == dg.DagsterRunStatus.SUCCESS, st.step_failures(instance, again.run_id)
    assert _objects(stack, f"binary_metrics/{PAIR}") == before  # deterministic: the same bytes
    _no_slot_held(instance)


def test_postgres_restarted_while_the_daemon_runs(stack, hands_off):
    """PostgreSQL stops (fast shutdown: every connection cut) and comes back while a run is in
    progress. What the README's guarantees table states: the daemon keeps running and its
    loops reconnect; the run in flight ends (succeeds if its writes found the database back,
    else fails naming the lost connection) and a re-execution from failure completes; the next
    runs succeed."""
    instance = stack.instance
    run_id = st.launch(stack.stack, "bits_job", f"8|{PAIR}", **NO_RETRY)
    st.wait_for(
        lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED,
        120,
        "the run to start",
    )
    time.sleep(2)
    stack.stack.restart("postgres", signal.SIGINT)
    daemon = stack.stack.servers["daemon"]
    run = st.finished(instance, run_id, timeout_s=300)
    assert daemon.alive(), daemon.tail()
    if run.status != dg.DagsterRunStatus.SUCCESS:
        # A write that found no database: the run fails, saying so (no silent loss).
        said = " ".join(st.step_failures(instance, run_id)) + " ".join(
            r.message for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        )
        print(f"the run in flight failed: {said[:2000]}")
        run = st.finished(instance, st.reexecute_from_failure(stack.stack, run_id))
    assert run.status == dg.DagsterRunStatus.SUCCESS, st.step_failures(instance, run.run_id)
    # The webserver's first request after the restart may fail on its stale connection
    # (st.STALE_CONNECTION); launch and re-execute ask once more, as a user clicks again.
    after_id = st.launch(stack.stack, "dataset_job", "tiny")
    assert st.finished(instance, after_id).status == dg.DagsterRunStatus.SUCCESS
    _no_slot_held(instance)


LOCATION_FILE = """\
from phase2_assets.components.study import study_location

defs = study_location({config!r}, storage_url={store!r})
"""


def test_two_studies_queued_at_once_keep_to_their_own_files_and_share_the_pools(
    stack, hands_off, tmp_path, tiny_beir, tiny_model
):
    """A second study (its own code location and store) runs hands off while the first study's
    bit partitions are queued again: the run queue and the pools hold across both, and neither
    study's files are touched by the other."""
    instance, running = stack.instance, stack.stack
    first_files = _objects(stack, "")
    other_store = running.storage_url.rsplit("/", 1)[0] + "/tiny-b"
    one_budget = {"datasets": ["tiny"], "models": ["tiny-bert"], "bits": [8], "pq_bytes": [1]}
    config = write_tiny_study(
        tmp_path / "tiny_b.yaml",
        tiny_beir,
        tiny_model,
        **{**st.STACK_STUDY, "name": "tiny-b", "tiers": {"tier1": one_budget}},
    )
    location = tmp_path / "tiny_b_location.py"
    location.write_text(LOCATION_FILE.format(config=str(config), store=other_store))
    running.add_study("tiny_b", location)
    since = time.time()

    running.dagster("sensor", "start", "--start-all", "-w", str(running.workspace), "-l", "tiny_b")
    again = [st.launch(running, "bits_job", f"{bits}|{PAIR}", **NO_RETRY) for bits in (8, 64)]
    st.wait_for(
        lambda: st.study_done(instance, str(config)),
        1200,
        lambda: f"study tiny-b to finish; runs: {st.runs_summary(instance)}",
    )
    for run_id in again:
        assert st.finished(instance, run_id).status == dg.DagsterRunStatus.SUCCESS

    runs = [
        record.dagster_run
        for record in instance.get_run_records()
        if record.create_timestamp.timestamp() >= since
    ]
    by_study = {r.tags.get("phase2/study") for r in runs}
    assert by_study == {"tiny", "tiny-b"}
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), st.runs_summary(instance)
    # The first study's store: the same objects, byte for byte (its bit partitions were
    # rewritten with the same bytes); the second study's files only in its own store.
    assert _objects(stack, "") == first_files
    other = st.bucket_files(other_store)
    assert "results/report.html" in other and "study.json" in other
    assert b'"name": "tiny-b"' in other["study.json"]
    heavy = {"float_ground_truth", "int8_index", "reference_metrics", "pq_index", "method_metrics"}
    assert st.overlapping(st.step_intervals(instance, heavy)) == []
    _no_slot_held(instance)
