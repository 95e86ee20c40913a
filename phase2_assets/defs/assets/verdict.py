"""Kill-switches F1–F3/K3 (asset checks + the explicit gate), the verdict and the HTML report."""

import datetime as dt

import dagster as dg
import polars as pl

from phase2_assets.compute.analysis import bfi as bfi_lib
from phase2_assets.compute.analysis import decisions
from phase2_assets.compute.report import figures, page
from phase2_assets.config import Study, plan, split_pair
from phase2_assets.defs.cpu_share import with_cpu_share
from phase2_assets.defs.groups import REPORT, in_plan
from phase2_assets.defs.locations import storage_root
from phase2_assets.defs.provenance import outcome_metadata, provenance
from phase2_assets.defs.resources import StudyRuntime
from phase2_assets.defs.results_io import attach_figure

RESULTS = {
    "retrieval_metrics": dg.AssetIn(key=["results", "retrieval_metrics"]),
    "regression": dg.AssetIn(key=["results", "regression"]),
}


def switches_for(
    study: Study,
    results: pl.DataFrame,
    regression: pl.DataFrame,
    adapter: pl.DataFrame | None = None,
    today: dt.date | None = None,
):
    ks = study.kill_switches
    return [
        decisions.f1_binary_collapse(results, ks.f1_recall_at_10_512_below),
        decisions.f2_pq_dominance(results, ks.f2_binary_over_pq_below),
        decisions.f3_geometry_non_signal(regression, ks.f3_abs_rho_below, ks.f3_r2_below),
        decisions.k1_core_behind_schedule(
            completion(study, results, list(study.tiers)[:1]),
            study.start_date,
            today or dt.date.today(),
            week=ks.k1_week,
            min_completion=ks.k1_min_tier1_completion,
        ),
        decisions.k2_adapter_no_signal(
            first_adapter_gain(study, adapter), ks.k2_min_gain_pp, study.adapter_pairs()[0]
        ),
        decisions.k3_predictor_failure(regression, ks.k3_r2_below, ks.k3_abs_rho_below),
    ]


def first_adapter_gain(study: Study, adapter: pl.DataFrame | None) -> float | None:
    """Points gained at 256 bits by the first configuration on the first adapter pair (K2)."""
    if adapter is None or adapter.height == 0:
        return None
    dataset, model = split_pair(study.adapter_pairs()[0])
    rows = adapter.filter(
        (pl.col("dataset") == dataset) & (pl.col("model") == model) & (pl.col("config_index") == 0)
    )
    gains = dict(zip(rows["bits"].to_list(), rows["points_gained"].to_list(), strict=True))
    return decisions.k2_gain(gains)


def best_adapter_gain(adapter: pl.DataFrame) -> float | None:
    """The verdict's X3 number: the best points gained at 256 bits (or any bits) anywhere."""
    if adapter.height == 0:
        return None
    at_256 = adapter.filter(pl.col("bits") == 256)
    return float((at_256 if at_256.height else adapter)["points_gained"].max())


def _check_spec(study: Study, name: str, severity_note: str) -> dg.AssetCheckSpec:
    rules = {s.name: s for s in switches_for(study, pl.DataFrame(), pl.DataFrame())}
    switch = rules[name]
    return dg.AssetCheckSpec(
        name,
        asset=["results", "kill_switches"],
        description=f"{name} fires when {switch.rule}. When fired it stops: {switch.blocks}. "
        f"{severity_note}",
    )


def completion(study: Study, results: pl.DataFrame, tiers: list[str]) -> float | None:
    planned = plan.planned_result_rows(study, tiers, core_only=True)
    if not planned:
        return None
    have = set()
    if results.height:
        have = {
            (d, m, meth, int(b))
            for d, m, meth, b in results.select("dataset", "model", "method", "bits").iter_rows()
        }
    return len(planned & have) / len(planned)


def build(study: Study) -> list[dg.AssetsDefinition]:
    binding = "Binding: the gate file results/kill_switches.json stops that work in later runs."

    @dg.asset(
        **in_plan(REPORT, "F1-F3-K1-K3"),
        key=["results", "kill_switches"],
        io_manager_key="json_io_manager",
        kinds={"json"},
        ins=RESULTS,
        description=(
            "The kill-switches of the plan, computed from the results and regression tables with "
            "the config's thresholds. Written to data/results/kill_switches.json, which is also "
            "the gate that Tier-2 assets read before doing any work (Dagster's blocking checks "
            "do not stop later backfill runs)."
        ),
        check_specs=[
            _check_spec(study, "F1", binding),
            _check_spec(study, "F2", binding),
            _check_spec(study, "F3", "Warning: geometry claims become weak hypotheses."),
            _check_spec(study, "K1", binding),
            _check_spec(study, "K2", binding),
            _check_spec(study, "K3", "Warning: the regression asset skips the MLP."),
        ],
    )
    @with_cpu_share
    def kill_switches(
        context: dg.AssetExecutionContext, runtime: StudyRuntime, retrieval_metrics, regression
    ):
        adapter = _read_adapter(runtime.data_dir)
        switches = switches_for(study, retrieval_metrics, regression, adapter)
        states = [s.to_dict() for s in switches]
        yield dg.Output(
            {"study": study.name, "config_hash": study.config_hash(), "switches": states},
            metadata={**provenance(study), **{s.name: s.state for s in switches}},
        )
        for s in switches:
            yield dg.AssetCheckResult(
                check_name=s.name,
                passed=not s.fired,
                severity=dg.AssetCheckSeverity.ERROR
                if s.name in ("F1", "F2", "K1", "K2")
                else dg.AssetCheckSeverity.WARN,
                metadata={"state": s.state, "rule": s.rule, **outcome_metadata(s.numbers)},
            )

    @dg.asset(
        **in_plan(REPORT, "verdict"),
        key=["results", "verdict"],
        io_manager_key="json_io_manager",
        kinds={"json"},
        ins={
            **RESULTS,
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
        runtime: StudyRuntime,
        retrieval_metrics,
        regression,
        kill_switches,
        bfi,
    ):
        switches = [decisions.Switch(**_switch_fields(s)) for s in kill_switches["switches"]]
        tiers = list(study.tiers)
        v = decisions.verdict(
            retrieval_metrics,
            switches,
            tier1_completion=completion(study, retrieval_metrics, tiers[:1]) or 0.0,
            tier2_completion=completion(study, retrieval_metrics, tiers[1:]),
            exploratory_done=bfi.height > 0 and regression.height > 0,
            adapter_gain_pp=best_adapter_gain(_read_adapter(runtime.data_dir)),
            green_bits=study.verdict.green_bits,
            green_recall=study.verdict.green_recall_at_10,
            green_ratio=study.verdict.green_ratio_vs_pq,
            tier2_mostly_done=study.verdict.tier2_mostly_done,
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

    @dg.asset(
        **in_plan(REPORT, "report"),
        key=["results", "report"],
        io_manager_key="html_io_manager",
        kinds={"plotly"},
        ins={
            **RESULTS,
            "geometry": dg.AssetIn(key=["results", "geometry"]),
            "bfi": dg.AssetIn(key=["results", "bfi"]),
            "kill_switches": dg.AssetIn(key=["results", "kill_switches"]),
            "verdict": dg.AssetIn(key=["results", "verdict"]),
        },
        description=(
            "data/results/report.html: one self-contained page (plotly inlined, works offline) "
            "with the frontier, iso-memory ratios, geometry, predictors, BFI, every kill-switch "
            "and the verdict, all drawn from the result tables."
        ),
    )
    @with_cpu_share
    def study_report(
        context: dg.AssetExecutionContext,
        runtime: StudyRuntime,
        retrieval_metrics,
        regression,
        geometry,
        bfi,
        kill_switches,
        verdict,
    ):
        frontier = figures.frontier(retrieval_metrics)
        meta = attach_figure(runtime.data_dir, "frontier_recall_at_10", frontier)
        ndcg = figures.frontier(retrieval_metrics, "ndcg_at_10")
        meta.update(attach_figure(runtime.data_dir, "frontier_ndcg_at_10", ndcg))
        summary = bfi_lib.bfi_summary(bfi) if bfi.height else {}
        reg_cols = [
            c
            for c in (
                "target",
                "model",
                "n_points",
                "loocv_r2",
                "loocv_rmse",
                "spearman_rho",
                "r2_ci_low",
                "r2_ci_high",
                "status",
                "note",
            )
            if c in regression.columns
        ]
        sections = [
            (
                "Quality–memory frontier",
                "recall_at_10 against the exact float top-10; x axis is "
                "code bytes per vector (fixed overheads are in the results table).",
                frontier,
            ),
            ("Task quality (nDCG@10 against qrels)", "", ndcg),
            (
                "Binary vs PQ at matched memory",
                "ratio = binary / PQ recall_at_10 (F2 reads it)",
                decisions.binary_vs_pq(retrieval_metrics),
            ),
            (
                "Results table",
                "data/results/retrieval_metrics.parquet",
                retrieval_metrics.drop([c for c in ("n_docs",) if c in retrieval_metrics.columns]),
            ),
        ]
        if geometry.height:
            sections += [
                (
                    "Geometry of the embeddings (E7)",
                    "",
                    figures.geometry_panels(geometry, study.analysis.features),
                ),
                ("Hamming distance histograms", "", figures.hamming_histograms(geometry)),
            ]
        if regression.height:
            sections.append(
                (
                    "Geometry → quality predictors (E8/X2)",
                    "Leave-one-out CV; intervals are seeded bootstrap 95% CIs.",
                    regression.select(reg_cols),
                )
            )
        if bfi.height:
            sections += [
                (
                    "Binary Friendliness Index (X1)",
                    f"spread {summary.get('spread', float('nan')):.3f} ({summary.get('band')}); "
                    f"Spearman vs recall_at_10@256: {summary.get('spearman_vs_recall_256')}",
                    figures.bfi_ranking(bfi),
                ),
                ("BFI table", "", bfi),
            ]
        html = page.render(
            title=f"Binary retrieval study '{study.name}' — report",
            verdict=verdict,
            switches=kill_switches["switches"],
            sections=sections,
        )
        return dg.Output(html, metadata={**provenance(study), **meta, "verdict": verdict["colour"]})

    return [kill_switches, verdict, study_report]


def _read_adapter(data_dir) -> pl.DataFrame:
    """results/adapter.parquet if X3 has run (read, not an input: K1 and K2 gate X3 itself)."""
    path = storage_root(data_dir) / "results" / "adapter.parquet"
    if not path.exists():
        return pl.DataFrame()
    with path.open("rb") as fh:
        return pl.read_parquet(fh)


def _switch_fields(state: dict) -> dict:
    return {k: state[k] for k in ("name", "rule", "blocks", "evaluated", "fired", "numbers")}
