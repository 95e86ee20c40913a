"""`phase2`: the short path. Runs every partition of a study through a real Dagster instance, so
runs, materialisations and check results are there afterwards in `dagster dev`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _instance(data_dir: Path):
    from dagster import DagsterInstance

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(data_dir / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch(exist_ok=True)
    return DagsterInstance.get()


# Progress and warnings reach the console; per-step DEBUG events stay in the instance (and UI).
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_study(config: str, data_dir: str | None = None) -> int:
    """Materialise every planned partition of ``config``, level by level; 0 if all succeeded."""
    from phase2_assets.config import load_study
    from phase2_assets.defs import jobs
    from phase2_assets.defs.build import build_definitions, default_data_dir
    from phase2_assets.defs.partitions import pair_bits_key

    study = load_study(config)
    os.environ["PHASE2_STUDY"] = config
    data = Path(data_dir or default_data_dir()).resolve()
    defs = build_definitions(study, str(data))
    instance = _instance(data)
    plan = (
        [(jobs.DATASET_JOB, d) for d in study.dataset_names()]
        + [(jobs.PAIR_JOB, p) for p in study.pairs()]
        + [(jobs.BITS_JOB, pair_bits_key(p, b)) for p, b in study.planned_bit_partitions()]
        + [(jobs.RESULTS_JOB, None)]
    )
    print(f"study {study.name!r} ({study.config_hash()}): {len(plan)} runs, data in {data}")
    failed = []
    for i, (job_name, key) in enumerate(plan, start=1):
        label = f"{job_name}[{key}]" if key is not None else job_name
        t0 = time.perf_counter()
        result = defs.resolve_job_def(job_name).execute_in_process(
            run_config=_QUIET, partition_key=key, instance=instance, raise_on_error=False
        )
        status = "ok" if result.success else "FAILED"
        print(
            f"[{i}/{len(plan)}] {label}: {status} in {time.perf_counter() - t0:.1f}s "
            f"(run {result.run_id})",
            flush=True,
        )
        if not result.success:
            failed.append(label)
    table = data / "results" / "retrieval_metrics.parquet"
    if table.exists():
        import polars as pl

        with pl.Config(tbl_rows=100, tbl_cols=12, tbl_width_chars=160):
            print(
                pl.read_parquet(table).select(
                    "dataset",
                    "model",
                    "method",
                    "bits",
                    "bytes_per_vector",
                    "recall_at_10",
                    "ndcg_at_10",
                    "ndcg_at_10_vs_float",
                )
            )
        print(f"results: {table}")
    if failed:
        print(f"{len(failed)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']} (open with `dagster dev`)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phase2", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="the demo study: SciFact x all-MiniLM-L6-v2, all bit lengths")
    run = sub.add_parser("run", help="every planned partition of a study config")
    run.add_argument("config", help="path to a study YAML (or a bundled name: study, demo)")
    for p in sub.choices.values():
        p.add_argument("--data-dir", default=None, help="output folder (default: ./data)")
    args = parser.parse_args(argv)
    from phase2_assets.config import StudyConfigError

    try:
        if args.command == "demo":
            return run_study("demo", args.data_dir)
        return run_study(args.config, args.data_dir)
    except StudyConfigError as exc:
        print(f"phase2: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
