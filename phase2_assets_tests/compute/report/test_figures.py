"""The report's figures: every method recognisable, the front right, densities comparable."""

import polars as pl
import pytest

from phase2_assets.compute.methods import FAMILIES, METHODS
from phase2_assets.compute.report import figures, method_styles


def test_every_registered_method_has_its_own_colour_and_marker():
    styles = [method_styles.style(m) for m in METHODS]
    assert len({s["color"] for s in styles}) == len(METHODS) >= 19
    assert len({(s["color"], s["symbol"]) for s in styles}) == len(METHODS)


def test_pareto_front_keeps_only_undominated_points():
    points = [(8, 0.2), (16, 0.5), (16, 0.3), (32, 0.4), (64, 0.9), (128, 0.9), (4, 0.1)]
    assert figures.pareto_front(points) == [(4, 0.1), (8, 0.2), (16, 0.5), (64, 0.9)]


def _results() -> pl.DataFrame:
    rows = []
    for method, points in {
        "binary": [(64, 8.0, 0.2), (128, 16.0, 0.35)],
        "pq": [(64, 8.0, 0.3), (128, 16.0, 0.5)],
        "int8": [(3072, 384.0, 0.95)],
        "float32": [(12288, 1536.0, 1.0)],
    }.items():
        for bits, nbytes, recall in points:
            rows.append(
                {
                    "dataset": "d",
                    "model": "m",
                    "method": method,
                    "bits": bits,
                    "bytes_per_vector": nbytes,
                    "recall_at_10": recall,
                }
            )
    return pl.DataFrame(rows)


def test_frontier_legend_one_entry_per_method_grouped_by_family_with_bits_in_hover():
    fig = figures.frontier(_results())
    shown = [t for t in fig.data if t.showlegend is not False]
    names = [t.name for t in shown]
    assert names == ["Pareto front", "binary", "pq", "int8", "float32"]  # family order
    titles = [t.legendgrouptitle.text for t in shown if t.legendgrouptitle.text]
    assert titles == [FAMILIES[f] for f in ("binary", "pq", "scalar", "reference")]
    binary = next(t for t in fig.data if t.name == "binary")
    assert [list(c) for c in binary.customdata] == [[64, 8.0], [128, 16.0]]
    assert "bits" in binary.hovertemplate and "B/vector" in binary.hovertemplate
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(front.x) == [8.0, 16.0, 384.0, 1536.0]  # pq beats binary at 8 and 16 bytes
    assert list(fig.layout.xaxis.tickvals) == [8, 16, 32, 64, 128, 256, 512, 1024, 2048]


def test_hamming_densities_integrate_to_one_at_every_bit_length():
    geometry = pl.DataFrame(
        {
            "dataset": ["d", "d"],
            "model": ["m", "m"],
            "bits": [4, 8],
            "hamming_histogram": [[0, 1, 2, 1, 0], [0, 0, 1, 2, 2, 2, 1, 0, 0]],
        }
    )
    fig = figures.hamming_densities(geometry)
    for trace, bits in zip(fig.data, (4, 8), strict=True):
        # The trapezoid-free check: density x bin width summed over bins is 1.
        assert sum(y / bits for y in trace.y) == pytest.approx(1.0)
    # The same shape at twice the bits keeps its peak height, unlike a fraction per bin.
    assert max(fig.data[0].y) == pytest.approx(2.0) and max(fig.data[1].y) == pytest.approx(2.0)
