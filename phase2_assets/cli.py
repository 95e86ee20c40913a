"""`phase2`: the short path. Runs every partition of a study through a real Dagster instance, so
runs, materialisations and check results are there afterwards in `dagster dev`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _instance(data_dir: Path):
    """$DAGSTER_HOME (default data/dagster_home), with the local dagster.yaml if it has none."""
    from dagster import DagsterInstance

    from phase2_assets.defs.instance import release_orphaned_slots, write_local_config

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(data_dir / "dagster_home")))
    write_local_config(home)
    instance = DagsterInstance.get()
    for line in release_orphaned_slots(instance):
        print(line, flush=True)
    return instance


# Warnings and errors reach the console, with the embedding progress bar and one line per run;
# the steps' INFO progress lines and DEBUG events stay in the instance (the UI's run logs).
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _stage(study, pairs: list[str], done_datasets: set[str]) -> list[tuple[str, object]]:
    from phase2_assets.config import split_pair
    from phase2_assets.defs import jobs
    from phase2_assets.defs.partitions import pair_bits_key

    datasets = sorted({split_pair(p)[0] for p in pairs} - done_datasets)
    done_datasets.update(datasets)
    return (
        [(jobs.DATASET_JOB, d) for d in datasets]
        + [(jobs.PAIR_JOB, p) for p in pairs]
        + [
            (jobs.BITS_JOB, pair_bits_key(p, b))
            for p, b in study.planned_bit_partitions()
            if p in pairs
        ]
        + [(jobs.RESULTS_JOB, None, GATE_TABLES)]
    )


# What the gates between levels read: the kill-switches and the tables they are computed from.
# The verdict, the memo and the report wait for the last pass, after X3.
GATE_TABLES = ("retrieval_metrics", "geometry", "bfi", "regression", "kill_switches")


def _explore(study, defs, instance, data: Path, embedded: list[str], failed: list[str]) -> None:
    """X3 on the adapter pairs that were embedded, unless K1 paused the Exploratory track;
    then every study-wide table (adapter table, ledger, K2, verdict, memo, report)."""
    from phase2_assets.defs import gates, jobs

    pairs = [p for p in study.adapter_pairs() if p in embedded]
    paused = gates.fired(data, ("K1",))
    if paused:
        print(f"X3 paused by K1: {paused[0]['rule']} ({paused[0]['numbers']})")
    elif pairs:
        print(f"exploratory X3: adapter on {', '.join(pairs)}")
        _execute(defs, instance, [(jobs.ADAPTER_JOB, pairs[0])], failed)
        stopped = gates.fired(data, ("K2",))
        if stopped:
            print(f"X3 stopped by K2: {stopped[0]['rule']} ({stopped[0]['numbers']})")
        else:
            _execute(defs, instance, [(jobs.ADAPTER_JOB, p) for p in pairs[1:]], failed)
    _execute(defs, instance, [(jobs.RESULTS_JOB, None)], failed)


def _execute(defs, instance, plan, failed: list[str]) -> None:
    import dagster as dg

    from phase2_assets.defs.instance import cli_run_tags

    for i, (job_name, key, *tables) in enumerate(plan, start=1):
        label = f"{job_name}[{key}]" if key is not None else job_name
        selection = [dg.AssetKey(["results", t]) for t in tables[0]] if tables else None
        if selection:
            label += " (kill-switches)"
        print(f"[{i}/{len(plan)}] {label} ...", flush=True)
        t0 = time.perf_counter()
        result = defs.resolve_job_def(job_name).execute_in_process(
            run_config=_QUIET,
            partition_key=key,
            asset_selection=selection,
            instance=instance,
            raise_on_error=False,
            tags=cli_run_tags(),
        )
        status = "ok" if result.success else "FAILED"
        print(
            f"[{i}/{len(plan)}] {label}: {status} in {time.perf_counter() - t0:.1f}s "
            f"(run {result.run_id})",
            flush=True,
        )
        if not result.success:
            failed.append(label)


def run_study(config: str, data_dir: str | None = None, *, report_only: bool = False) -> int:
    """Materialise every planned partition of ``config``; 0 if all succeeded.

    The core tier (the first in the config) runs first, then the study-wide tables and the
    kill-switches; expansion tiers run only if F1/F2 did not fire (the same gate the assets read).
    """
    from phase2_assets.config import load_study
    from phase2_assets.defs import gates, jobs
    from phase2_assets.defs.build import build_definitions, default_data_dir
    from phase2_assets.defs.progress import PROGRESS_BAR_ENV

    study = load_study(config)
    os.environ["PHASE2_STUDY"] = config
    if sys.stderr.isatty():  # the runs' own stderr is captured: tell them a person is watching
        os.environ.setdefault(PROGRESS_BAR_ENV, "1")
    data = Path(data_dir or default_data_dir()).resolve()
    defs = build_definitions(study, str(data))
    instance = _instance(data)
    failed: list[str] = []
    if report_only:
        _execute(defs, instance, [(jobs.RESULTS_JOB, None)], failed)
    else:
        core = [p for p in study.pairs() if not study.is_expansion_pair(p)]
        expansion = [p for p in study.pairs() if study.is_expansion_pair(p)]
        done: set[str] = set()
        print(f"study {study.name!r} ({study.config_hash()}), data in {data}")
        print(f"core tier {study.core_tier!r}: {len(core)} (dataset, model) pairs")
        _execute(defs, instance, _stage(study, core, done), failed)
        if expansion:
            fired = gates.fired_expansion_switches(data)
            if fired:
                names = ", ".join(s["name"] for s in fired)
                print(
                    f"expansion tiers stopped by kill-switch {names}: {len(expansion)} pairs "
                    f"not run (see {gates.gate_path(data)})"
                )
            else:
                print(f"expansion tiers: {len(expansion)} pairs")
                _execute(defs, instance, _stage(study, expansion, done), failed)
                core += expansion
        _explore(study, defs, instance, data, core, failed)
    _print_summary(data)
    if failed:
        print(f"{len(failed)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']} (open with `dagster dev`)")
    return 0


def _print_summary(data: Path) -> None:
    from phase2_assets.defs.locations import storage_root

    results = storage_root(data) / "results"  # the data folder, or $PHASE2_STORAGE_URL
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
    from phase2_assets.config import load_study
    from phase2_assets.defs.partitions import partition_keys

    study = load_study(config or os.environ.get("PHASE2_STUDY") or "study")
    try:
        print(",".join(partition_keys(study, level, tier)))
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
    rep.add_argument("config", nargs="?", default=None, help="study (default: $PHASE2_STUDY)")
    for p in sub.choices.values():
        p.add_argument("--data-dir", default=None, help="output folder (default: ./data)")
    keys = sub.add_parser(
        "partitions",
        help="print a tier's partition keys, comma-separated, for `dagster job backfill`",
    )
    keys.add_argument("--study", default=None, help="study (default: $PHASE2_STUDY, else study)")
    keys.add_argument("--tier", default=None, help="a tier of the study (default: every tier)")
    keys.add_argument("--level", required=True, choices=["dataset", "pair", "bits", "adapter"])
    args = parser.parse_args(argv)
    from phase2_assets.config import StudyConfigError

    try:
        if args.command == "partitions":
            return _print_partitions(args.study, args.tier, args.level)
        if args.command == "demo":
            return run_study("demo", args.data_dir)
        if args.command == "report":
            config = args.config or os.environ.get("PHASE2_STUDY") or "study"
            return run_study(config, args.data_dir, report_only=True)
        return run_study(args.config, args.data_dir)
    except StudyConfigError as exc:
        print(f"phase2: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
