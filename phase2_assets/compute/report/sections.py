"""What the study report shows, in order: each section a title, a caption and a figure or table,
all drawn from the result tables."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import plotly.graph_objects as go
import polars as pl

from phase2_assets.compute.analysis import corpus_ladder, decisions
from phase2_assets.compute.methods import METHODS
from phase2_assets.compute.report import figure_registry, figures
from phase2_assets.compute.report import ledger as ledger_lib
from phase2_assets.compute.report.figure_registry import Figure, FigureSettings
from phase2_assets.compute.report.method_styles import ordered_methods
from phase2_assets.compute.report.page import Folded, Links
from phase2_assets.compute.search.evaluation import SKIPPED_COLUMNS

REGRESSION_COLUMNS = (
    "target",
    "model",
    "n_points",
    "loocv_r2",
    "loocv_rmse",
    "spearman_rho",
    "r2_ci_low",
    "r2_ci_high",
    "status",
)
ADAPTER_COLUMNS = (
    "dataset",
    "model",
    "adapter",
    "bits",
    "baseline_recall_at_10",
    "adapted_recall_at_10",
    "itq_recall_at_10",
    "pq_recall_at_10",
    "points_gained",
    "gap_closed",
    "itq_gap_closed",
    "device",
)
OWN_BUDGET = "own budget"


def pivot(results: pl.DataFrame, metric: str = "recall_at_10") -> list[tuple[str, pl.DataFrame]]:
    """Per (dataset, model): one row per method (legend order), one column per bit budget of
    the plan; a method sized by the model's dimension (float32, int8, sign, ...) shows its value
    and its own bits in the last column."""
    out = []
    budgets = {m for m, spec in METHODS.items() if spec.budget == "bits"}
    for dataset, model in figures._pairs(results):
        sub = results.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        shared = sorted(set(sub.filter(pl.col("method").is_in(budgets))["bits"].to_list()))
        rows = []
        for method in ordered_methods(sub["method"].to_list()):
            cells = {
                r["bits"]: r[metric]
                for r in sub.filter(pl.col("method") == method).rows(named=True)
            }
            row = {"method": method, **{f"{b} bits": _cell(cells.get(b)) for b in shared}}
            own = [b for b in cells if b not in shared or method not in budgets]
            row[OWN_BUDGET] = "; ".join(f"{_cell(cells[b])} @ {b:,} bits" for b in sorted(own))
            rows.append(row)
        out.append((f"{dataset} × {model}", pl.DataFrame(rows)))
    return out


def _cell(value) -> str:
    """A quality in [0, 1] to three decimals, so a column of them lines up."""
    return "" if value is None or value != value else f"{value:.3f}"


def _predictors(regression: pl.DataFrame) -> pl.DataFrame | str:
    fitted = regression.filter(pl.col("status").str.starts_with("fitted"))
    if fitted.height == 0:
        first = regression.row(0, named=True)
        return (
            f"No predictor was fitted ({', '.join(sorted(set(regression['status'])))}): "
            f"{first.get('note') or 'no reason recorded'}."
        )
    return fitted.select([c for c in REGRESSION_COLUMNS if c in fitted.columns])


# The tables the report reads, in the order of their parts; each part opens with its figures.
TABLES = (
    "retrieval_metrics",
    "geometry",
    "regression",
    "bfi",
    "adapter",
    "budget_ledger",
    "corpus_ladder",
)
Section = tuple[str, str, object]


def report_sections(
    results: pl.DataFrame,
    regression: pl.DataFrame,
    geometry: pl.DataFrame,
    bfi: pl.DataFrame,
    features: list[str],
    adapter: pl.DataFrame | None = None,
    ledger: pl.DataFrame | None = None,
    skipped: pl.DataFrame | None = None,
    drawn: Mapping[str, go.Figure] | None = None,
    ladder: pl.DataFrame | None = None,
) -> list[Section]:
    """``skipped``: the planned rows whose method could not be built, with why
    (``evaluation.skipped_table``); shown in a "Skipped" section after the results table.
    ``drawn``: the registry's figures as the report asset drew them (attaching some of them
    too), so that none is drawn twice; drawn here from the same tables when not given."""
    tables = dict(
        zip(TABLES, (results, geometry, regression, bfi, adapter, ledger, ladder), strict=True)
    )
    placed = figure_registry.in_report()
    if unplaced := sorted(f.name for f in placed if f.table not in TABLES):
        raise ValueError(
            f"figures {unplaced} have a report section but are drawn from a table the report "
            f"does not read (it reads {', '.join(TABLES)}): give them section=None"
        )
    if drawn is None:
        drawn = figure_registry.draw(placed, tables, FigureSettings(features=tuple(features)))
    shown = partial(figure_sections, placed, tables, drawn)
    sections = [
        *shown("retrieval_metrics"),
        (
            "Binary vs PQ at matched memory",
            "ratio = binary / PQ recall_at_10 at the same bytes per vector (F2 reads it)",
            decisions.binary_vs_pq(results),
        ),
    ]
    for title, table in pivot(results):
        sections.append((f"recall_at_10 by method and bits — {title}", "", table))
    sections.append(
        (
            "Results table",
            "data/results/retrieval_metrics.parquet, every column",
            Folded(
                f"all {results.height} rows",
                results.drop([c for c in ("n_docs",) if c in results.columns]),
            ),
        )
    )
    if skipped is not None and skipped.height:
        sections.append(
            (
                "Skipped",
                f"{skipped.height} planned row{'s' if skipped.height != 1 else ''} not in the "
                "results table: the method cannot be built on that corpus "
                "(data/results/skipped_methods.parquet)",
                skipped.select([c for c in SKIPPED_COLUMNS if c in skipped.columns]),
            )
        )
    sections += shown("corpus_ladder")
    if ladder is not None and ladder.height:
        trend = corpus_ladder.trend(ladder)
        if trend.height:
            sections.append(
                (
                    "Recall change per tenfold corpus",
                    "least-squares slope of recall_at_10 against log10(passages), per pair "
                    "(data/results/corpus_ladder.parquet holds every rung)",
                    trend,
                )
            )
    sections += shown("geometry") + shown("regression")
    if regression.height:
        sections.append(
            (
                "Geometry → quality predictors (E8/X2)",
                "Leave-one-out CV; intervals are seeded bootstrap 95% CIs.",
                _predictors(regression),
            )
        )
    sections += shown("bfi")
    if bfi.height:
        sections.append(("BFI table", "", bfi))
    sections += shown("adapter")
    if adapter is not None and adapter.height:
        sections.append(
            (
                "Adapter on cached embeddings (X3)",
                "points_gained = adapted minus instrument recall_at_10, in points; gap_closed = "
                "share of the instrument -> PQ gap the adapter closes.",
                adapter.select([c for c in ADAPTER_COLUMNS if c in adapter.columns]),
            )
        )
    sections += shown("budget_ledger")
    if ledger is not None and ledger.height:
        shown_ledger = ledger.select([c for c in ledger_lib.SHOWN if c in ledger.columns])
        sections.append(("GPU and CPU budget ledger", ledger_lib.HOURS_NOTE, shown_ledger))
    sections.append(
        (
            "Files of this study",
            "",
            Links(
                (
                    ("design memo (X4)", "design_memo.md", "the Phase-3/4 memo, once X4 has run"),
                    (
                        "kill_switches.json",
                        "kill_switches.json",
                        "every switch's state and numbers",
                    ),
                    ("verdict.json", "verdict.json", "the verdict with its reasons"),
                    ("budget_ledger.parquet", "budget_ledger.parquet", "measured device hours"),
                    (
                        "skipped_methods.parquet",
                        "skipped_methods.parquet",
                        "the planned rows that could not be built, with why",
                    ),
                    ("figures", "figures/", "each figure as an interactive page and a PNG"),
                )
            ),
        )
    )
    return sections


def figure_sections(
    placed: list[Figure],
    tables: Mapping[str, pl.DataFrame | None],
    drawn: Mapping[str, go.Figure],
    table: str,
) -> list[Section]:
    """The drawn figures of ``table`` under their headings, in the registry's order."""
    return [
        (f.section, f.caption_for(tables[table]), drawn[f.name])
        for f in placed
        if f.table == table and f.name in drawn
    ]
