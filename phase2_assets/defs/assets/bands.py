"""The plan's target bands of E1–E8 and X1–X4 as an asset, one warning check per experiment."""

import dagster as dg

from phase2_assets.compute.analysis import bands as bands_lib
from phase2_assets.compute.analysis import decisions
from phase2_assets.compute.methods import METHODS
from phase2_assets.compute.report import memo
from phase2_assets.config import Study
from phase2_assets.defs.assets.verdict import switch_fields
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.graph.groups import REPORT, in_plan
from phase2_assets.defs.steps import check_history
from phase2_assets.defs.steps.provenance import outcome_metadata, provenance
from phase2_assets.defs.steps.study_tables import optional_table

BANDS_KEY = dg.AssetKey(["results", "target_bands"])
TABLES = ("retrieval_metrics", "regression", "bfi", "geometry", "kill_switches")


def planned_pairs(study: Study) -> dict[str, set[tuple[str, str]]]:
    return {
        name: {(d, m) for d in tier.datasets for m in tier.models}
        for name, tier in study.tiers.items()
    }


def code_check_names() -> list[str]:
    return [c.name for c in METHODS["binary"].stored.index_checks]


def truth_hours(instance: dg.DagsterInstance, study: Study) -> float | None:
    """Wall-clock hours of the current ground truth (its partitions' newest runs)."""
    seconds = check_history.latest_seconds(instance, "float_ground_truth", study.name)
    return None if seconds is None else seconds / 3600


def judge_bands(instance: dg.DagsterInstance, study: Study, tables: dict) -> list[bands_lib.Band]:
    """Every band from the tables and this study's check history in ``instance``."""
    results = tables["retrieval_metrics"]
    switches = [decisions.Switch(**switch_fields(s)) for s in tables["kill_switches"]["switches"]]
    cfg = study.verdict
    threshold, _ = memo.bfi_threshold(
        tables["bfi"], results, cfg.green_bits, cfg.green_recall_at_10, cfg.green_ratio_vs_pq
    )
    ks = study.kill_switches
    return bands_lib.evaluate(
        results=results,
        regression=tables["regression"],
        bfi=tables["bfi"],
        geometry=tables["geometry"],
        adapter=tables.get("adapter"),
        ledger=tables.get("budget_ledger"),
        code_checks=check_history.latest_checks(
            instance, METHODS["binary"].stored.asset, code_check_names(), study.name
        ),
        truth_checks=check_history.latest_checks(
            instance, "float_ground_truth", ["self_consistent"], study.name
        ),
        truth_cpu_hours=truth_hours(instance, study),
        switches=switches,
        planned_pairs=planned_pairs(study),
        bfi_threshold=threshold,
        thresholds=study.bands,
        f3=(ks.f3_abs_rho_below, ks.f3_r2_below),
    )


def _md(bands: list[bands_lib.Band]) -> str:
    lines = ["| experiment | band | the numbers that placed it |", "|---|---|---|"]
    for b in bands:
        text = (b.reading or b.why_not).replace("|", "/")
        scale = f" ({b.scale_note()})" if b.scale_note() else ""
        lines.append(f"| {b.experiment} | {b.band} | {text}{scale} |")
    return "\n".join(lines)


def record(context, study: Study, found: list[bands_lib.Band]):
    """The bands as the asset's value and metadata, then a check result per judged band (one
    not judged yields none: Dagster shows it skipped, and the reason is in the metadata)."""
    counts = {band: sum(b.band == band for b in found) for band in bands_lib.BANDS}
    stored = [b.to_dict() for b in found]
    # Measured, so kept out of the stored bands (E4 keeps only which side of its budget it is).
    hours = truth_hours(context.instance, study)
    measured = {} if hours is None else {"ground_truth_wall_hours": round(hours, 6)}
    yield dg.Output(
        {"study": study.name, "config_hash": study.config_hash(), "bands": stored},
        output_name="target_bands",
        metadata={
            **provenance(study),
            **measured,
            "summary": ", ".join(f"{n} {band}" for band, n in counts.items() if n),
            "bands": dg.MetadataValue.md(_md(found)),
            "bands_table": dg.MetadataValue.table(
                records=[dg.TableRecord(r) for r in bands_lib.table(stored).to_dicts()],
                schema=dg.TableSchema(
                    columns=[dg.TableColumn(c, "string") for c in bands_lib.TABLE_COLUMNS]
                ),
            ),
        },
    )
    selected = context.selected_asset_check_keys
    for b in found:
        if dg.AssetCheckKey(BANDS_KEY, b.experiment) not in selected:
            continue
        if not b.judged:
            context.log.info(f"{b.experiment} not judged: {b.why_not} (its check is skipped)")
            continue
        yield dg.AssetCheckResult(
            asset_key=BANDS_KEY,
            check_name=b.experiment,
            passed=b.band != bands_lib.NEGATIVE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "band": b.band,
                "reading": b.reading,
                "scale": b.scale_note(),
                **outcome_metadata(b.numbers),
            },
        )


def build(study: Study) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="target_bands",
        outs={
            "target_bands": dg.AssetOut(
                **in_plan(REPORT, "E1-E8-X1-X4"),
                key=BANDS_KEY,
                io_manager_key="json_io_manager",
                kinds={"json"},
                description=(
                    "data/results/target_bands.json: what the study found, experiment by "
                    "experiment. Each of E1-E8 and X1-X4 is placed in the plan's Hope, Still "
                    "useful or Negative band (config `bands:`, the plan's numbers as defaults) "
                    "from the measured tables and the checks of the codes and the ground truth, "
                    "with the numbers that placed it and the corpus sizes it was judged on, or "
                    "is not judged, with the reason. The report opens with this table."
                ),
            )
        },
        ins={
            **{name: dg.AssetIn(key=["results", name]) for name in TABLES},
            "adapter": optional_table("results", "adapter"),
            "budget_ledger": optional_table("results", "budget_ledger"),
        },
        check_specs=[
            dg.AssetCheckSpec(
                e,
                asset=BANDS_KEY,
                description=f"{e}: {bands_lib.QUESTIONS[e]} Fails (a warning: a band never "
                "blocks) when the experiment lands in the plan's Negative band; skipped while "
                "it cannot be judged.",
            )
            for e in bands_lib.EXPERIMENTS
        ],
        can_subset=True,
    )
    @with_cpu_share
    def target_bands(context: dg.AssetExecutionContext, **tables):
        yield from record(context, study, judge_bands(context.instance, study, tables))

    return [target_bands]
