"""Kill-switches F1–F3/K1–K3 (asset checks + the explicit gate), the verdict and the HTML report."""

import datetime as dt

import dagster as dg
import polars as pl

from phase2_assets.compute.analysis import bands as bands_lib
from phase2_assets.compute.analysis import decisions, switches
from phase2_assets.compute.report import figure_registry, page, sections
from phase2_assets.compute.report.figure_registry import FigureSettings
from phase2_assets.config import Study, plan, split_pair
from phase2_assets.defs.assets.metrics import skipped_table
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.graph.groups import REPORT, in_plan
from phase2_assets.defs.steps.all_or_nothing import all_or_nothing
from phase2_assets.defs.steps.provenance import outcome_metadata, provenance
from phase2_assets.defs.steps.runtime import StudyRuntime
from phase2_assets.defs.steps.study_tables import attach_registered, optional_table

RESULTS = {
    "retrieval_metrics": dg.AssetIn(key=["results", "retrieval_metrics"]),
    "regression": dg.AssetIn(key=["results", "regression"]),
}
# X3's table, read if X3 has run: K2 and the verdict read it (X3 itself is gated by the gate
# file, so the kill-switches are computed before X3 exists).
ADAPTER = {"adapter": optional_table("results", "adapter")}
NOTES = {
    "F3": "Warning: geometry claims become weak hypotheses.",
    "K3": "Warning: the regression asset skips the MLP.",
}
BINDING_NOTE = "Binding: the gate file results/kill_switches.json stops that work in later runs."


def switches_for(
    study: Study,
    results: pl.DataFrame,
    regression: pl.DataFrame,
    adapter: pl.DataFrame | None = None,
    today: dt.date | None = None,
) -> list[decisions.Switch]:
    k2_pair = study.adapter_pairs()[0]
    return switches.evaluate(
        results,
        regression,
        adapter,
        thresholds=study.kill_switches,
        core_rows=plan.planned_result_rows(study, [study.core_tier], core_only=True),
        start_date=study.start_date,
        today=today or dt.date.today(),
        adapter_pair=split_pair(k2_pair),
        adapter_pair_key=k2_pair,
        skipped=skipped_table(study, results),
        full_scale_passages=study.bands.full_scale_passages,
    )


def completion(study: Study, results: pl.DataFrame, tiers: list[str]) -> float | None:
    return switches.completion(plan.planned_result_rows(study, tiers, core_only=True), results)


def _check_specs(study: Study) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            s.name,
            asset=["results", "kill_switches"],
            description=f"{s.name} fires when {s.rule}. When fired it stops: {s.blocks}. "
            f"{NOTES.get(s.name, BINDING_NOTE)}",
        )
        for s in switches_for(study, pl.DataFrame(), pl.DataFrame())
    ]


def evaluate_switches(context, study: Study, retrieval_metrics, regression, adapter):
    """The switches' states, then a check result for each switch that could be judged. A switch
    that cannot be judged yet (too few points, no start date, X3 not run) yields none: Dagster
    then shows its check as skipped, not as a green Passed, and the reason is in the asset's
    metadata, the run log and the verdict."""
    states = switches_for(study, retrieval_metrics, regression, adapter)
    counts = {state: sum(s.state.lower() == state for s in states) for state in STATES}
    yield dg.Output(
        {
            "study": study.name,
            "config_hash": study.config_hash(),
            "switches": [s.to_dict() for s in states],
        },
        output_name="kill_switches",
        metadata={
            **provenance(study),
            "summary": ", ".join(f"{n} {state}" for state, n in counts.items()),
            **{f"switches_{state.replace(' ', '_')}": n for state, n in counts.items()},
            "states": dg.MetadataValue.md(_states_md(states)),
        },
    )
    selected = context.selected_asset_check_keys
    for s in states:
        key = dg.AssetCheckKey(SWITCHES_KEY, s.name)
        if key not in selected:
            continue
        if s.state == "not evaluated":
            context.log.info(f"{s.name} not evaluated: {s.why_not} (its check is skipped)")
            continue
        yield dg.AssetCheckResult(
            asset_key=SWITCHES_KEY,
            check_name=s.name,
            passed=not s.fired,
            severity=dg.AssetCheckSeverity.ERROR
            if s.name in switches.BINDING
            else dg.AssetCheckSeverity.WARN,
            metadata={"state": s.state, "rule": s.rule, **outcome_metadata(s.numbers)},
        )


STATES = ("fired", "clear", "not evaluated")
SWITCHES_KEY = dg.AssetKey(["results", "kill_switches"])
REPORT_KEY = dg.AssetKey(["results", "report"])


def _states_md(states) -> str:
    lines = ["| switch | state | why not evaluated, or the rule judged |", "|---|---|---|"]
    for s in states:
        why = s.why_not if s.state == "not evaluated" else s.rule
        lines.append(f"| {s.name} | {s.state} | {why} |")
    return "\n".join(lines)


def judge(study: Study, retrieval_metrics, regression, kill_switches, bfi, adapter) -> dg.Output:
    states = [decisions.Switch(**switch_fields(s)) for s in kill_switches["switches"]]
    tiers, cfg = list(study.tiers), study.verdict
    v = decisions.verdict(
        retrieval_metrics,
        states,
        tier1_completion=completion(study, retrieval_metrics, tiers[:1]) or 0.0,
        tier2_completion=completion(study, retrieval_metrics, tiers[1:]),
        exploratory_done=bfi.height > 0 and regression.height > 0,
        adapter_gain_pp=switches.best_adapter_gain(adapter),
        green_bits=cfg.green_bits,
        green_recall=cfg.green_recall_at_10,
        green_ratio=cfg.green_ratio_vs_pq,
        green_adapter_gain_pp=cfg.green_adapter_gain_pp,
        tier2_mostly_done=cfg.tier2_mostly_done,
        full_scale_passages=study.bands.full_scale_passages,
    )
    return dg.Output(
        v.to_dict(),
        metadata={
            **provenance(study),
            "verdict": v.colour,
            "final": v.final,
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in v.reasons)),
        },
    )


def write_report(
    runtime, study: Study, tables: dict, kill_switches, verdict, target_bands
) -> dg.Output:
    """``tables``: the report's inputs, named as the registry's figures name their tables."""
    results = tables["retrieval_metrics"]
    settings = FigureSettings(features=tuple(study.analysis.features))
    drawn = figure_registry.draw(figure_registry.in_report(), tables, settings)
    meta = attach_registered(runtime.storage_root, REPORT_KEY, tables, settings, drawn)
    html = page.render(
        title=f"Binary retrieval study '{study.name}' — report",
        verdict=verdict,
        switches=kill_switches["switches"],
        found=bands_lib.table(target_bands["bands"]),
        sections=sections.report_sections(
            results,
            tables["regression"],
            tables["geometry"],
            tables["bfi"],
            list(study.analysis.features),
            adapter=tables.get("adapter"),
            ledger=tables.get("budget_ledger"),
            skipped=skipped_table(study, results),
            drawn=drawn,
            ladder=tables.get("corpus_ladder"),
        ),
    )
    return dg.Output(html, metadata={**provenance(study), **meta, "verdict": verdict["colour"]})


def build(study: Study) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="kill_switches",
        outs={
            "kill_switches": dg.AssetOut(
                **in_plan(REPORT, "F1-F3-K1-K3"),
                key=SWITCHES_KEY,
                io_manager_key="json_io_manager",
                kinds={"json"},
                description=(
                    "The kill-switches of the plan, computed from the results, regression and "
                    "adapter tables with the config's thresholds: each fired, clear or not "
                    "evaluated (with the reason; its check is then skipped). Written to "
                    "data/results/kill_switches.json, which is also the gate that Tier-2 assets "
                    "read before doing any work (Dagster's blocking checks do not stop later "
                    "backfill runs)."
                ),
            )
        },
        ins={**RESULTS, **ADAPTER},
        check_specs=_check_specs(study),
        can_subset=True,  # so that a switch that cannot be judged yields no check result
    )
    @all_or_nothing
    @with_cpu_share
    def kill_switches(context: dg.AssetExecutionContext, retrieval_metrics, regression, adapter):
        yield from evaluate_switches(context, study, retrieval_metrics, regression, adapter)

    @dg.asset(
        **in_plan(REPORT, "verdict"),
        key=["results", "verdict"],
        io_manager_key="json_io_manager",
        kinds={"json"},
        ins={
            **RESULTS,
            **ADAPTER,
            "kill_switches": dg.AssetIn(key=["results", "kill_switches"]),
            "bfi": dg.AssetIn(key=["results", "bfi"]),
        },
        description=(
            "data/results/verdict.json: GREEN / YELLOW / RED by the plan's summary rules, with "
            "the reasons and the numbers behind them. Provisional while Tier-1 is incomplete."
        ),
    )
    @with_cpu_share
    def verdict(
        context: dg.AssetExecutionContext,
        retrieval_metrics,
        regression,
        adapter,
        kill_switches,
        bfi,
    ):
        return judge(study, retrieval_metrics, regression, kill_switches, bfi, adapter)

    @dg.asset(
        **in_plan(REPORT, "report"),
        key=REPORT_KEY,
        io_manager_key="html_io_manager",
        kinds={"plotly"},
        ins={
            **RESULTS,
            "geometry": dg.AssetIn(key=["results", "geometry"]),
            "bfi": dg.AssetIn(key=["results", "bfi"]),
            "corpus_ladder": dg.AssetIn(key=["results", "corpus_ladder"]),
            "kill_switches": dg.AssetIn(key=["results", "kill_switches"]),
            "verdict": dg.AssetIn(key=["results", "verdict"]),
            "target_bands": dg.AssetIn(key=["results", "target_bands"]),
            **ADAPTER,
            "budget_ledger": optional_table("results", "budget_ledger"),
        },
        description=(
            "data/results/report.html: one self-contained page (plotly inlined once, works "
            "offline) opening with what the study found (every experiment's target band), then "
            "the verdict, every kill-switch, the frontier with its Pareto front, "
            "iso-memory ratios, a method x bits table per pair, geometry, predictors, BFI, the X3 "
            "adapter and the budget ledger, all drawn from the result tables, and links to the "
            "memo and the JSON files beside it."
        ),
    )
    @with_cpu_share
    def study_report(
        context: dg.AssetExecutionContext,
        runtime: StudyRuntime,
        kill_switches,
        verdict,
        target_bands,
        **tables,
    ):
        return write_report(runtime, study, tables, kill_switches, verdict, target_bands)

    return [kill_switches, verdict, study_report]


def switch_fields(state: dict) -> dict:
    fields = ("name", "rule", "blocks", "evaluated", "fired", "numbers", "why_not")
    return {k: state[k] for k in fields if k in state}  # gate files before why_not lack it
