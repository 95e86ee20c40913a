"""`phase2`: the short path. Runs every partition of a study through a real Dagster instance, so
runs, materialisations and check results are there afterwards in `dagster dev`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from phase2_assets.cli import findings as findings_cli
from phase2_assets.cli import stack as stack_cli


def _instance(data_dir: Path):
    """$DAGSTER_HOME (default data/dagster_home), with the local dagster.yaml if it has none."""
    from dagster import DagsterInstance

    from phase2_assets.cli.instance import write_local_config
    from phase2_assets.defs.execution.slots import release_orphaned_slots

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(data_dir / "dagster_home")))
    write_local_config(home)
    instance = DagsterInstance.get()
    for line in release_orphaned_slots(instance):
        print(line, flush=True)
    return instance


# Warnings and errors reach the console, with the embedding progress bar and one line per run;
# the steps' INFO progress lines and DEBUG events stay in the instance (the UI's run logs).
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _execute(runner, request, counter: list[int]) -> bool:
    """Run one request (a run of the code location, executed here); whether it succeeded."""
    from phase2_assets.cli.instance import cli_run_tags
    from phase2_assets.defs.execution.cpu_share import RUNS_AT_ONCE_TAG
    from phase2_assets.defs.graph.requests import label_of

    counter[0] += 1
    label = label_of(request)
    print(f"[{counter[0]}] {label} ...", flush=True)
    t0 = time.perf_counter()
    run = runner.execute(request, run_config=_QUIET, tags={**cli_run_tags(), RUNS_AT_ONCE_TAG: "1"})
    status = "ok" if run.is_success else run.status.value
    print(
        f"[{counter[0]}] {label}: {status} in {time.perf_counter() - t0:.1f}s (run {run.run_id})",
        flush=True,
    )
    return run.is_success


def run_study(config: str | None, data_dir: str | None = None, *, report_only: bool = False) -> int:
    """Materialise every planned partition of ``config``; 0 if all succeeded.

    Follows the study's plan (``config/plan.py``) tier by tier, as the tier sensors do: the core
    tier, the expansion tiers unless F1/F2 fired, then X3 and every study-wide table. Each step
    is a run of the code location (``cli/runs.LocationRuns``), as `dagster job launch` makes it,
    executed in this process. Everything runs again on every invocation: "done" is what this
    invocation ran. The first failed run stops it, since later levels would read what that run
    did not write.

    ``config`` None (``phase2 report`` without one): the study that made the data folder
    (``defs/study_stamp``), else $PHASE2_STUDY, else the full plan. A folder that holds another
    study is refused, naming both, before anything runs.
    """
    from phase2_assets.cli import runs
    from phase2_assets.config import load_study, plan
    from phase2_assets.defs.build import default_data_dir
    from phase2_assets.defs.execution.executors import EXECUTOR_ENV
    from phase2_assets.defs.graph.requests import label_of
    from phase2_assets.defs.steps.progress import PROGRESS_BAR_ENV
    from phase2_assets.defs.storage import gates, study_stamp
    from phase2_assets.defs.storage.locations import storage_root

    data = Path(data_dir or default_data_dir()).resolve()
    root = storage_root(data)  # the data folder, or $PHASE2_STORAGE_URL: the stamp, gates, tables
    try:
        stamp = study_stamp.read(root)
        if config is None:
            config = stamp["config"] if stamp else os.environ.get("PHASE2_STUDY") or "study"
        study = load_study(config)
        before = study_stamp.claim(root, study, config)
    except study_stamp.OtherStudyError as exc:
        print(f"phase2: {exc}", file=sys.stderr)
        return 2
    if before and before.get("config_hash") != study.config_hash():
        print(
            f"study {study.name!r}: its config changed since this folder's last run (hash "
            f"{before.get('config_hash')} -> {study.config_hash()})"
        )
    # The code location reads the study, the data folder and the executor from the environment.
    os.environ["PHASE2_STUDY"] = config
    os.environ["PHASE2_DATA_DIR"] = str(data)
    os.environ.setdefault(EXECUTOR_ENV, "in_process")  # one run at a time, every step in it
    if sys.stderr.isatty():  # the runs' own stderr is captured: tell them a person is watching
        os.environ.setdefault(PROGRESS_BAR_ENV, "1")
    instance = _instance(data)
    counter = [0]
    with runs.LocationRuns(instance) as runner:

        def execute(request: plan.Request) -> bool:
            return _execute(runner, request, counter)

        if report_only:
            failed = [] if execute(plan.Request("results")) else [plan.Request("results")]
        else:
            print(f"study {study.name!r} ({study.config_hash()}), data in {data}")
            failed = plan.follow(study, lambda: gates.read_gates(root), execute, say=print)
    if failed:
        print(
            f"phase2: stopped at {label_of(failed[0])}, which failed (its run log is in "
            "`dagster dev`); later levels would read what it did not write",
            file=sys.stderr,
        )
        return 1
    _print_summary(root)
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']} (open with `dagster dev`)")
    return 0


def _print_summary(root) -> None:
    from phase2_assets.defs.steps.study_tables import results_dir

    results = results_dir(root)  # the data folder, or $PHASE2_STORAGE_URL
    table = results / "retrieval_metrics.parquet"
    if table.exists():
        import polars as pl

        with table.open("rb") as fh, pl.Config(tbl_rows=200, tbl_cols=12, tbl_width_chars=160):
            print(
                pl.read_parquet(fh).select(
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
    verdict = results / "verdict.json"
    if verdict.exists():
        import json

        v = json.loads(verdict.read_text())
        print(f"verdict: {v['colour']}{'' if v['final'] else ' (provisional)'}")
        for reason in v["reasons"]:
            print(f"  - {reason}")
    if (results / "report.html").exists():
        print(f"report: {results / 'report.html'}")


def _print_partitions(config: str | None, tier: str | None, level: str) -> int:
    from phase2_assets.config import load_study, plan

    study = load_study(config or os.environ.get("PHASE2_STUDY") or "study")
    try:
        print(",".join(plan.partition_keys(study, level, tier)))
    except ValueError as exc:
        print(f"phase2: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phase2", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="the demo study: SciFact x all-MiniLM-L6-v2, all bit lengths")
    run = sub.add_parser("run", help="every planned partition of a study config")
    run.add_argument("config", help="path to a study YAML (or a bundled name: study, demo)")
    rep = sub.add_parser("report", help="(re)build the study-wide tables and report.html")
    rep.add_argument(
        "config",
        nargs="?",
        default=None,
        help="study (default: the one that made the data folder, else $PHASE2_STUDY)",
    )
    for p in sub.choices.values():
        p.add_argument("--data-dir", default=None, help="output folder (default: ./data)")
    keys = sub.add_parser(
        "partitions",
        help="print a tier's partition keys, comma-separated, for `dagster job backfill`",
    )
    keys.add_argument("--study", default=None, help="study (default: $PHASE2_STUDY, else study)")
    keys.add_argument("--tier", default=None, help="a tier of the study (default: every tier)")
    keys.add_argument("--level", required=True, choices=["dataset", "pair", "bits", "adapter"])
    stack_cli.add_parser(sub)
    findings_cli.add_parser(sub)
    args = parser.parse_args(argv)
    from phase2_assets.config import StudyConfigError

    try:
        if args.command == "stack":
            return stack_cli.main(args)
        if args.command == "findings":
            return findings_cli.main(args)
        if args.command == "partitions":
            return _print_partitions(args.study, args.tier, args.level)
        if args.command == "demo":
            return run_study("demo", args.data_dir)
        if args.command == "report":
            return run_study(args.config, args.data_dir, report_only=True)
        return run_study(args.config, args.data_dir)
    except StudyConfigError as exc:
        print(f"phase2: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
