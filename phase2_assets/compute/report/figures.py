"""Plotly figures drawn from the result tables only: no figure shows a number the tables lack.

The builders come first; the study's figures are declared once at the end of this file, in the
report's order, and nothing else names a builder: a new figure is a builder and a ``register``
call here (docs/extending/a-figure.md).
"""

from __future__ import annotations

import json
import math

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from phase2_assets.compute.report.figure_registry import Figure, register
from phase2_assets.compute.report.method_styles import family_of, ordered_methods, style
from phase2_assets.compute.report.numbers import fmt


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (fewer bytes and higher quality), by bytes."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _pairs(table: pl.DataFrame) -> list[tuple[str, str]]:
    return table.select("dataset", "model").unique().sort("dataset", "model").rows()


def _log2_ticks(values: list[float]) -> list[int]:
    """Powers of two spanning the data: clean labels on a log axis (8, 16, ..., 2,048)."""
    if not values:
        return []
    lo = math.floor(math.log2(max(min(values), 1)))
    hi = math.ceil(math.log2(max(values)))
    return [2**k for k in range(lo, hi + 1)]


def _pair_panels(table: pl.DataFrame, empty: str, **subplots):
    """One panel per dataset x model, three to a row: the figure, its pairs in panel order, the
    number of rows, and each pair's ``row=``/``col=`` (the small multiples a six-pair report
    needs where one chart would overlap)."""
    pairs = _pairs(table) if table.height else []
    cols = min(3, max(len(pairs), 1))
    rows = max(1, -(-len(pairs) // cols))
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=[f"{d} × {m}" for d, m in pairs] or [empty], **subplots
    )
    where = [{"row": i // cols + 1, "col": i % cols + 1} for i in range(len(pairs))]
    return fig, pairs, rows, where


def frontier(results: pl.DataFrame, metric: str = "recall_at_10") -> go.Figure:
    """Quality vs code bytes per vector (log axis), one panel per dataset x model, with the
    Pareto front of each panel; one legend entry per method, grouped by family."""
    from phase2_assets.compute.methods import FAMILIES

    fig, pairs, rows, panels = _pair_panels(results, "no results")
    methods = ordered_methods(results["method"].to_list()) if results.height else []
    titled = set()
    for i, (dataset, model) in enumerate(pairs):
        sub = results.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        where = panels[i]
        front = pareto_front(sub.select("bytes_per_vector", metric).drop_nulls().rows())
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in front],
                y=[p[1] for p in front],
                mode="lines",
                line={"color": "rgba(0,0,0,0.25)", "width": 8, "shape": "hv"},
                name="Pareto front",
                legendgroup="front",
                showlegend=i == 0,
                hoverinfo="skip",
            ),
            **where,
        )
        for method in methods:
            pts = sub.filter(pl.col("method") == method).sort("bytes_per_vector")
            if pts.height == 0:
                continue
            family, look = family_of(method), style(method)
            first = family not in titled
            titled.add(family)
            fig.add_trace(
                go.Scatter(
                    x=pts["bytes_per_vector"].to_list(),
                    y=pts[metric].to_list(),
                    customdata=pts.select("bits", "bytes_per_vector").rows(),
                    mode="lines+markers" if pts.height > 1 else "markers",
                    name=method,
                    legendgroup=family,
                    legendgrouptitle_text=FAMILIES[family] if first else None,
                    showlegend=i == 0,
                    marker={"color": look["color"], "symbol": look["symbol"], "size": 9},
                    line={"color": look["color"]},
                    hovertemplate=(
                        f"<b>{method}</b><br>%{{customdata[0]:,}} bits · "
                        f"%{{customdata[1]:,.4~g}} B/vector<br>{metric} %{{y:.3f}}<extra></extra>"
                    ),
                ),
                **where,
            )
    ticks = _log2_ticks(results["bytes_per_vector"].drop_nulls().to_list()) if pairs else []
    fig.update_xaxes(
        type="log",
        title_text="code bytes per vector (log)",
        tickvals=ticks,
        ticktext=[f"{t:,}" for t in ticks],
        minor={"showgrid": False},
    )
    fig.update_yaxes(title_text=metric, range=[0, 1.02])
    groups = len({family_of(m) for m in methods})
    legend_px = 21 * (len(methods) + groups + 1) + 14 * groups + 60  # the whole legend, no scroll
    fig.update_layout(
        title=f"Quality–memory frontier ({metric}; x = code bytes only, overheads in the table)",
        height=max(320 * rows + 80, legend_px + 100),
        legend={"groupclick": "toggleitem", "tracegroupgap": 14},
    )
    return fig


def hamming_densities(geometry: pl.DataFrame) -> go.Figure:
    """Normalised Hamming distances between random passage pairs as a density (per unit of
    distance / bits), so curves at different bit lengths are comparable: a fraction per bin
    would fall with bits only because there are more bins. One panel per dataset x model, one
    line per bit length (the legend lists bit lengths, not every pair x bits)."""
    if "hamming_histogram" not in geometry.columns:
        return go.Figure()
    rows_ = geometry.filter(pl.col("hamming_histogram").is_not_null())
    fig, pairs, n_rows, panels = _pair_panels(rows_, "no codes", shared_yaxes=True)
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    all_bits = sorted({len(_counts(h)) - 1 for h in rows_["hamming_histogram"].to_list()})
    for i, (dataset, model) in enumerate(pairs):
        sub = rows_.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        for row in sub.sort("bits").iter_rows(named=True):
            counts = _counts(row["hamming_histogram"])
            total = sum(counts) or 1
            bits = len(counts) - 1
            fig.add_trace(
                go.Scatter(
                    x=[d / bits for d in range(bits + 1)],
                    y=[c * bits / total for c in counts],  # fraction / bin width (1 / bits)
                    mode="lines",
                    name=f"{bits} bits",
                    legendgroup=f"{bits} bits",
                    showlegend=i == 0,
                    line={"color": colours[all_bits.index(bits) % len(colours)]},
                    hovertemplate=f"{dataset} × {model} @ {bits} bits<br>d/bits %{{x:.3f}}"
                    "<br>density %{y:.3g}<extra></extra>",
                ),
                **panels[i],
            )
    fig.update_xaxes(title_text="Hamming distance / bits")
    fig.update_yaxes(title_text="density", col=1)
    fig.update_layout(
        title="Hamming distance between random passage pairs (density over distance / bits)",
        height=300 * n_rows + 80,
    )
    return fig


def _counts(histogram) -> list[int]:
    return json.loads(histogram) if isinstance(histogram, str) else list(histogram)


def geometry_panels(geometry: pl.DataFrame, features: list[str]) -> go.Figure:
    """One bar chart per geometry feature, one bar per dataset x model."""
    per_pair = geometry.unique(subset=["dataset", "model"], keep="first").sort("dataset", "model")
    # A feature no pair has a value for would be an empty panel.
    feats = [
        f
        for f in features
        if f in per_pair.columns and per_pair[f].cast(pl.Float64).fill_nan(None).drop_nulls().len()
    ]
    fig = make_subplots(rows=1, cols=max(len(feats), 1), subplot_titles=feats or ["no features"])
    labels = [f"{d} × {m}" for d, m in per_pair.select("dataset", "model").rows()]
    for i, feat in enumerate(feats):
        fig.add_trace(
            # The value on each bar: a zero (no outlier dimensions, say) is a result, not a gap.
            go.Bar(
                x=labels,
                y=per_pair[feat].to_list(),
                name=feat,
                showlegend=False,
                text=[f"{v:.3g}" if v is not None else "n/a" for v in per_pair[feat].to_list()],
                textposition="outside",
            ),
            row=1,
            col=i + 1,
        )
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(title="Geometry of the float embeddings (E7)", height=420)
    return fig


def predicted_vs_actual(predictions: pl.DataFrame) -> go.Figure:
    """Leave-one-out predictions against the measured values, one trace per model."""
    fig = go.Figure()
    for model in predictions["model"].unique().sort().to_list() if predictions.height else []:
        pts = predictions.filter(pl.col("model") == model)
        fig.add_trace(
            go.Scatter(
                x=pts["actual"].to_list(),
                y=pts["predicted"].to_list(),
                mode="markers",
                name=model,
                text=pts["label"].to_list() if "label" in pts.columns else None,
            )
        )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="y = x", line={"dash": "dot"}))
    fig.update_layout(
        title="Geometry → binary recall_at_10: leave-one-out predicted vs actual (E8/X2)",
        xaxis_title="actual recall_at_10",
        yaxis_title="predicted (LOOCV)",
    )
    return fig


def corpus_ladder(ladder: pl.DataFrame) -> go.Figure:
    """recall_at_10 against passages in the corpus (log axis), one panel per dataset x model,
    one line per method at each bit length: how much a larger corpus costs at fixed bits."""
    fig, pairs, rows, panels = _pair_panels(ladder, "no results")
    lines = ladder.select("method", "bits").unique().sort("method", "bits").rows()
    bit_lengths = sorted({b for _, b in lines})
    dashes = ("solid", "dash", "dot", "dashdot")  # one per bit length; colour is the method's
    for i, (dataset, model) in enumerate(pairs):
        sub = ladder.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        for method, bits in lines:
            pts = sub.filter((pl.col("method") == method) & (pl.col("bits") == bits))
            if pts.height == 0:
                continue
            look = style(method)
            name = f"{method} @ {bits} bits"
            fig.add_trace(
                go.Scatter(
                    x=pts["corpus_docs"].to_list(),
                    y=pts["recall_at_10"].to_list(),
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=i == 0,
                    marker={"color": look["color"], "symbol": look["symbol"], "size": 8},
                    line={
                        "color": look["color"],
                        "dash": dashes[bit_lengths.index(bits) % len(dashes)],
                    },
                    hovertemplate=(
                        f"<b>{name}</b><br>%{{x:,}} passages<br>recall_at_10 %{{y:.3f}}"
                        "<extra></extra>"
                    ),
                ),
                **panels[i],
            )
    fig.update_xaxes(type="log", title_text="passages in the corpus (log)")
    fig.update_yaxes(title_text="recall_at_10", range=[0, 1.02])
    fig.update_layout(
        title="Recall at fixed bits against corpus size (nested subsets, judged passages kept)",
        height=320 * rows + 80,
    )
    return fig


def corpus_ladder_caption(ladder: pl.DataFrame) -> str:
    """The measured change per tenfold corpus, per method and bit length (median over pairs)."""
    from phase2_assets.compute.analysis.corpus_ladder import single_rung, trend

    slopes = trend(ladder)
    if slopes.height == 0:
        return "every corpus is a single rung: no trend to measure."
    alone = single_rung(ladder)
    summary = (
        slopes.group_by("method", "bits")
        .agg(pl.col("recall_change_per_tenfold").median(), pl.len().alias("pairs"))
        .sort("method", "bits")
    )
    parts = [
        f"{m} @ {b} bits {fmt(v)} per tenfold corpus (median of {n} pair{'s' * (n > 1)})"
        for m, b, v, n in summary.rows()
    ]
    lo, hi = int(slopes["smallest_docs"].min()), int(slopes["largest_docs"].max())
    return (
        f"recall_at_10 change, from {lo:,} to {hi:,} passages: " + "; ".join(parts) + ". "
        "Measured on these collections only; not an extrapolation to the plan's ~500K."
        + (f" {alone}" if alone else "")
    )


def bfi_ranking(bfi: pl.DataFrame) -> go.Figure:
    ranked = bfi.sort("bfi", descending=True)
    labels = [f"{d} × {m}" for d, m in ranked.select("dataset", "model").rows()]
    fig = go.Figure(go.Bar(x=labels, y=ranked["bfi"].to_list(), marker_color="#9467bd"))
    fig.update_layout(
        title="Binary Friendliness Index (X1), ranked", yaxis_title="BFI", yaxis_range=[0, 1]
    )
    return fig


def bfi_caption(bfi: pl.DataFrame) -> str:
    """Whether the index is worth having, read from the table the figure ranks."""
    from phase2_assets.compute.analysis.bfi import bfi_summary

    summary = bfi_summary(bfi)
    return (
        f"spread {fmt(summary.get('spread'))} ({summary.get('band')}); "
        f"Spearman vs recall_at_10@256: {fmt(summary.get('spearman_vs_recall_256'))}"
    )


# The assets that attach them, by their keys' user strings (the Dagster layer owns the keys).
REPORT = "results/report"
GEOMETRY = "results/geometry"
BFI = "results/bfi"
REGRESSION = "results/regression"
LADDER = "results/corpus_ladder"

register(
    Figure(
        "frontier_recall_at_10",
        table="retrieval_metrics",
        draw=lambda results, _: frontier(results, "recall_at_10"),
        attached_by=REPORT,
        section="Quality–memory frontier",
        caption="recall_at_10 against the exact float top-10; x axis is code bytes per vector "
        "(fixed overheads are in the results table); the grey band is the Pareto front.",
        drawn_when_empty=True,
    )
)
register(
    Figure(
        "frontier_ndcg_at_10",
        table="retrieval_metrics",
        draw=lambda results, _: frontier(results, "ndcg_at_10"),
        attached_by=REPORT,
        section="Task quality (nDCG@10 against qrels)",
        drawn_when_empty=True,
    )
)
register(
    Figure(
        "corpus_ladder",
        table="corpus_ladder",
        draw=lambda ladder, _: corpus_ladder(ladder),
        attached_by=LADDER,
        section="Recall against corpus size",
        caption=corpus_ladder_caption,
    )
)
register(
    Figure(
        "geometry_panels",
        table="geometry",
        draw=lambda geometry, settings: geometry_panels(geometry, list(settings.features)),
        attached_by=GEOMETRY,
        section="Geometry of the embeddings (E7)",
    )
)
register(
    Figure(
        "hamming_densities",
        table="geometry",
        draw=lambda geometry, _: hamming_densities(geometry),
        attached_by=GEOMETRY,
        section="Hamming distances between random passages",
    )
)
register(
    Figure(
        "bfi_ranking",
        table="bfi",
        draw=lambda bfi, _: bfi_ranking(bfi),
        attached_by=BFI,
        section="Binary Friendliness Index (X1)",
        caption=bfi_caption,
    )
)
register(
    Figure(
        "predicted_vs_actual",  # the held-out predictions are not a table the report reads
        table="predictions",
        draw=lambda predictions, _: predicted_vs_actual(predictions),
        attached_by=REGRESSION,
    )
)
