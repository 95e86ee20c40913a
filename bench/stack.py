"""``python -m bench.stack``: the per-study overhead of the multi-process stack (PostgreSQL,
Redis, S3, daemon, Celery workers) against a plain local ``phase2 run``, on the tiny study, and
where the stack's time goes. Run it alone: both runs share these cores.

Prints ``stack_overhead_ratio`` (hands-off wall time, from switching the sensors on to the
report, over the local run's wall time) and a breakdown read from the stack's instance:
- *sensor*: from the end of a level's last run to the creation of the next level's runs;
- *queue and launch*: from a run's creation to its start (the queue, the run's process loading
  the code location);
- *steps*: inside runs, the steps computing (STEP_START to its end) against the rest (Celery
  dispatch, a worker loading the code for its first task, the run's bookkeeping).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from phase2_assets.stack import launcher
from phase2_assets.testing import stack as st
from phase2_assets.testing.tiny import write_tiny_beir, write_tiny_model, write_tiny_study

STACK_VARS = ("PHASE2_STORAGE_URL", "PHASE2_EXECUTOR", "PHASE2_CELERY_BROKER", "DAGSTER_HOME")


def _local(study: Path, root: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARS}
    env["DAGSTER_HOME"] = str(root / "home")
    t0 = time.perf_counter()
    phase2 = str(Path(sys.executable).with_name("phase2"))
    subprocess.run(
        [phase2, "run", str(study), "--data-dir", str(root / "data")],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def _breakdown(instance: dg.DagsterInstance, t_on: float) -> dict:
    """Where the time went, from the instance's run records and step events."""
    records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    per_run, sensor, last_end = [], 0.0, t_on
    for rec in records:
        created = rec.create_timestamp.timestamp()
        starts, steps = {}, 0.0
        for entry in instance.all_logs(rec.dagster_run.run_id):
            ev = entry.dagster_event
            if ev is None:
                continue
            if ev.event_type == dg.DagsterEventType.STEP_START:
                starts[ev.step_key] = entry.timestamp
            elif ev.event_type == dg.DagsterEventType.STEP_SUCCESS and ev.step_key in starts:
                steps += entry.timestamp - starts.pop(ev.step_key)
        if created > last_end:  # a level's runs wait for the sensor's next look
            sensor += created - last_end
        last_end = max(last_end, rec.end_time or created)
        per_run.append(
            {
                "job": rec.dagster_run.job_name,
                "queue_and_launch_s": (rec.start_time or created) - created,
                "in_run_s": (rec.end_time or created) - (rec.start_time or created),
                "steps_computing_s": steps,
            }
        )
    total = {k: sum(r[k] for r in per_run) for k in per_run[0] if k != "job"} if per_run else {}
    return {"runs": len(per_run), "sensor_s": sensor, **total, "per_run": per_run}


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="phase2-bench-stack-"))
    study = write_tiny_study(
        root / "tiny.yaml", write_tiny_beir(root / "beir" / "tiny"), write_tiny_model(root / "m")
    )
    local_s = _local(study, root / "local")
    fast = {"PHASE2_SENSOR_INTERVAL_SECONDS": "2"}
    with st.environment(fast):
        t0 = time.perf_counter()
        stack = launcher.up(root / "stack", str(study), webserver=False)
        up_s = time.perf_counter() - t0
    try:
        with st.environment(stack.env):
            instance = dg.DagsterInstance.get()
            t_on = time.time()
            t1 = time.perf_counter()
            launcher.start_study(stack)
            st.wait_for(lambda: st.study_done(instance, str(study)), 900, "the study")
            stack_s = time.perf_counter() - t1
            parts = _breakdown(instance, t_on)
    finally:
        stack.down()
    print(f"local phase2 run: {local_s:.1f} s; stack up: {up_s:.1f} s (not counted)")
    print(f"stack hands-off, sensors on to report: {stack_s:.1f} s over {parts['runs']} runs")
    print(f"TARGET stack_overhead_ratio {stack_s / local_s:.2f} (measured; no goal)")
    print(
        "where the stack's time goes (seconds summed over runs; runs overlap): "
        f"sensor {parts['sensor_s']:.1f} (wall, between levels), "
        f"queue and launch {parts['queue_and_launch_s']:.1f}, "
        f"in runs {parts['in_run_s']:.1f} of which steps computing "
        f"{parts['steps_computing_s']:.1f}"
    )
    for run in parts["per_run"]:
        print(
            f"  {run['job']:<12} queue and launch {run['queue_and_launch_s']:5.1f} s, in run "
            f"{run['in_run_s']:5.1f} s, steps computing {run['steps_computing_s']:5.1f} s"
        )


if __name__ == "__main__":
    main()
