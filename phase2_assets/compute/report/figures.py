"""Plotly figures drawn from the result tables only: no figure shows a number the tables lack."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

METHOD_STYLE = {
    "binary": {"color": "#d62728", "symbol": "circle"},
    "pq": {"color": "#1f77b4", "symbol": "square"},
    "int8": {"color": "#2ca02c", "symbol": "diamond"},
    "float32": {"color": "#000000", "symbol": "star"},
}
# Methods beyond the plan: distinct colours in a fixed order, so a method keeps its colour.
OTHER_COLOURS = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
OTHER_SYMBOLS = ["triangle-up", "triangle-down", "cross", "x", "pentagon", "hexagon", "star-square"]


def _style(method: str) -> dict:
    if method in METHOD_STYLE:
        return METHOD_STYLE[method]
    from phase2_assets.compute.methods import METHODS

    others = sorted(m for m in METHODS if m not in METHOD_STYLE)
    i = others.index(method) if method in others else len(others)
    # Colour cycles first, then the symbol: no two of the first 49 methods look the same.
    colour, symbol = i % len(OTHER_COLOURS), (i // len(OTHER_COLOURS)) % len(OTHER_SYMBOLS)
    return {"color": OTHER_COLOURS[colour], "symbol": OTHER_SYMBOLS[symbol]}


def _pairs(table: pl.DataFrame) -> list[tuple[str, str]]:
    return table.select("dataset", "model").unique().sort("dataset", "model").rows()


def frontier(results: pl.DataFrame, metric: str = "recall_at_10") -> go.Figure:
    """Quality vs bytes per vector (code bytes only, log axis), one panel per dataset x model."""
    pairs = _pairs(results)
    cols = min(3, max(len(pairs), 1))
    rows = max(1, -(-len(pairs) // cols))
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=[f"{d} × {m}" for d, m in pairs] or ["no results"]
    )
    for i, (dataset, model) in enumerate(pairs):
        sub = results.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        for method in sub["method"].unique().sort().to_list():
            pts = sub.filter(pl.col("method") == method).sort("bytes_per_vector")
            style = _style(method)
            fig.add_trace(
                go.Scatter(
                    x=pts["bytes_per_vector"].to_list(),
                    y=pts[metric].to_list(),
                    mode="lines+markers" if pts.height > 1 else "markers",
                    name=method,
                    legendgroup=method,
                    showlegend=i == 0,
                    marker={"color": style["color"], "symbol": style["symbol"], "size": 8},
                    line={"color": style["color"]},
                    hovertemplate=f"{method}<br>%{{x}} B/vector<br>{metric} %{{y:.4f}}",
                ),
                row=i // cols + 1,
                col=i % cols + 1,
            )
    fig.update_xaxes(type="log", title_text="code bytes per vector (log)")
    fig.update_yaxes(title_text=metric, range=[0, 1.02])
    fig.update_layout(
        title=f"Quality–memory frontier ({metric}; x = code bytes only, overheads in the table)",
        height=320 * rows + 80,
    )
    return fig


def hamming_histograms(geometry: pl.DataFrame) -> go.Figure:
    """Distribution of normalised Hamming distances between random passage pairs, per bit length."""
    fig = go.Figure()
    if "hamming_histogram" not in geometry.columns:
        return fig
    for row in geometry.sort("dataset", "model", "bits").iter_rows(named=True):
        counts = row["hamming_histogram"]
        if counts is None:
            continue
        counts = json.loads(counts) if isinstance(counts, str) else list(counts)
        total = sum(counts) or 1
        bits = len(counts) - 1
        fig.add_trace(
            go.Scatter(
                x=[d / bits for d in range(bits + 1)],
                y=[c / total for c in counts],
                mode="lines",
                name=f"{row['dataset']} × {row['model']} @ {bits} bits",
            )
        )
    fig.update_layout(
        title="Hamming distance between random passage pairs (normalised by bits)",
        xaxis_title="Hamming distance / bits",
        yaxis_title="fraction of pairs",
    )
    return fig


def geometry_panels(geometry: pl.DataFrame, features: list[str]) -> go.Figure:
    """One bar chart per geometry feature, one bar per dataset x model."""
    per_pair = geometry.unique(subset=["dataset", "model"], keep="first").sort("dataset", "model")
    feats = [f for f in features if f in per_pair.columns]
    fig = make_subplots(rows=1, cols=max(len(feats), 1), subplot_titles=feats or ["no features"])
    labels = [f"{d} × {m}" for d, m in per_pair.select("dataset", "model").rows()]
    for i, feat in enumerate(feats):
        fig.add_trace(
            go.Bar(x=labels, y=per_pair[feat].to_list(), name=feat, showlegend=False),
            row=1,
            col=i + 1,
        )
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


def bfi_ranking(bfi: pl.DataFrame) -> go.Figure:
    ranked = bfi.sort("bfi", descending=True)
    labels = [f"{d} × {m}" for d, m in ranked.select("dataset", "model").rows()]
    fig = go.Figure(go.Bar(x=labels, y=ranked["bfi"].to_list(), marker_color="#9467bd"))
    fig.update_layout(
        title="Binary Friendliness Index (X1), ranked", yaxis_title="BFI", yaxis_range=[0, 1]
    )
    return fig
