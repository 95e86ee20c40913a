"""The registry of figures: each declared once, drawn once per materialisation, and shown by the
report in the registry's order; a figure dropped, renamed or moved changes the study's files,
so the expected lists here are written out in full."""

from __future__ import annotations

import re

import plotly.graph_objects as go
import polars as pl
import pytest

from phase2_assets.compute.report import figure_registry, page, sections
from phase2_assets.compute.report.figure_registry import Figure, FigureSettings, register

# (name, table, attached_by, section), in registration order.
EXPECTED = [
    ("frontier_recall_at_10", "retrieval_metrics", "results/report", "Quality–memory frontier"),
    (
        "frontier_ndcg_at_10",
        "retrieval_metrics",
        "results/report",
        "Task quality (nDCG@10 against qrels)",
    ),
    ("corpus_ladder", "corpus_ladder", "results/corpus_ladder", "Recall against corpus size"),
    ("geometry_panels", "geometry", "results/geometry", "Geometry of the embeddings (E7)"),
    (
        "hamming_densities",
        "geometry",
        "results/geometry",
        "Hamming distances between random passages",
    ),
    ("bfi_ranking", "bfi", "results/bfi", "Binary Friendliness Index (X1)"),
    ("predicted_vs_actual", "predictions", "results/regression", None),
]
REPORT = [  # every section of a report whose tables all have rows, figures marked *
    "*Quality–memory frontier",
    "*Task quality (nDCG@10 against qrels)",
    "Binary vs PQ at matched memory",
    "recall_at_10 by method and bits — d × m",
    "Results table",
    "*Recall against corpus size",
    "Recall change per tenfold corpus",
    "*Geometry of the embeddings (E7)",
    "*Hamming distances between random passages",
    "Geometry → quality predictors (E8/X2)",
    "*Binary Friendliness Index (X1)",
    "BFI table",
    "Adapter on cached embeddings (X3)",
    "GPU and CPU budget ledger",
    "Files of this study",
]


@pytest.fixture
def restored():
    """Whatever a test registers is gone after it."""
    before = figure_registry.registered()
    yield
    figure_registry.FIGURES.clear()
    figure_registry.FIGURES.update({f.name: f for f in before})


def _tables() -> dict[str, pl.DataFrame]:
    pair = {"dataset": ["d"], "model": ["m"]}
    return {
        "retrieval_metrics": pl.DataFrame(
            {
                **{k: v * 2 for k, v in pair.items()},
                "method": ["binary", "pq"],
                "bits": [64, 64],
                "bytes_per_vector": [8.0, 8.0],
                "recall_at_10": [0.2, 0.3],
                "ndcg_at_10": [0.2, 0.25],
            }
        ),
        "geometry": pl.DataFrame(
            {
                **pair,
                "bits": [4],
                "anisotropy_centred": [2.0],
                "hamming_histogram": [[0, 1, 0, 1, 0]],
            }
        ),
        "regression": pl.DataFrame({"target": ["recall_at_10"], "status": ["too few points"]}),
        "bfi": pl.DataFrame({**pair, "bfi": [0.4], "recall_at_10_256": [0.5]}),
        "adapter": pl.DataFrame({**pair, "bits": [64], "points_gained": [1.0]}),
        "budget_ledger": pl.DataFrame({"experiment": ["E1"], "within_budget": [True]}),
        "corpus_ladder": pl.DataFrame(
            {
                **{k: v * 2 for k, v in pair.items()},
                "method": ["binary", "binary"],
                "bits": [256, 256],
                "corpus_docs": [1000, 10000],
                "recall_at_10": [0.8, 0.6],
            }
        ),
    }


def _sections(drawn=None):
    t = _tables()
    return sections.report_sections(
        t["retrieval_metrics"],
        t["regression"],
        t["geometry"],
        t["bfi"],
        ["anisotropy_centred"],
        adapter=t["adapter"],
        ledger=t["budget_ledger"],
        drawn=drawn,
        ladder=t["corpus_ladder"],
    )


def test_the_registry_declares_the_study_figures_in_order():
    declared = [(f.name, f.table, f.attached_by, f.section) for f in figure_registry.registered()]
    assert declared == EXPECTED


def test_the_report_shows_the_registered_figures_in_order_each_in_its_place():
    shown = _sections()
    marked = [("*" if isinstance(c, go.Figure) else "") + title for title, _, c in shown]
    assert marked == REPORT
    figure_titles = [title for title, _, c in shown if isinstance(c, go.Figure)]
    assert figure_titles == [f.section for f in figure_registry.in_report()]
    html = page.render(title="t", verdict={}, switches=[], sections=shown)
    ids = re.findall(r'<div id="(figure-\d+)"', html)
    assert ids == [f"figure-{i}" for i in range(1, len(figure_titles) + 1)]
    headings = [html.index(f"<h2>{t}</h2>") for t in figure_titles]
    divs = [html.index(f'<div id="{i}"') for i in ids]
    assert headings == sorted(headings) and all(h < d for h, d in zip(headings, divs, strict=True))


def test_the_report_takes_the_figures_its_asset_drew_instead_of_drawing_them_again():
    tables = _tables()
    settings = FigureSettings(features=("anisotropy_centred",))
    drawn = figure_registry.draw(figure_registry.in_report(), tables, settings)
    shown = {title: c for title, _, c in _sections(drawn)}
    for figure in figure_registry.in_report():
        assert shown[figure.section] is drawn[figure.name]


def test_the_bfi_caption_is_read_from_the_table_it_ranks():
    caption = {title: cap for title, cap, _ in _sections()}["Binary Friendliness Index (X1)"]
    assert caption.startswith("spread 0") and "Spearman vs recall_at_10@256" in caption


def test_the_ladder_caption_reads_the_slope_per_tenfold_from_its_table():
    caption = {title: cap for title, cap, _ in _sections()}["Recall against corpus size"]
    # 0.8 at 1K, 0.6 at 10K: -0.2 per tenfold, from the table's two rungs.
    assert "binary @ 256 bits -0.2 per tenfold corpus (median of 1 pair)" in caption, caption
    assert "from 1,000 to 10,000 passages" in caption


def test_an_empty_table_draws_only_the_figures_that_say_so():
    empty = {name: table.clear() for name, table in _tables().items()}
    drawn = figure_registry.draw(figure_registry.registered(), empty)
    assert list(drawn) == ["frontier_recall_at_10", "frontier_ndcg_at_10"]
    assert figure_registry.draw(figure_registry.registered(), {"predictions": None}) == {}


def test_a_name_is_registered_once_and_must_be_an_identifier(restored):
    twice = Figure("bfi_ranking", table="bfi", draw=lambda t, s: go.Figure(), attached_by="x")
    with pytest.raises(ValueError, match="registered twice"):
        register(twice)
    with pytest.raises(ValueError, match="lower-case identifier"):
        register(Figure("BFI ranking", table="bfi", draw=twice.draw, attached_by="x"))


def test_a_report_figure_on_a_table_the_report_does_not_read_is_refused(restored):
    register(
        Figure(
            "stray",
            table="predictions",
            draw=lambda t, s: go.Figure(),
            attached_by="results/regression",
            section="Stray",
        )
    )
    with pytest.raises(ValueError, match=r"\['stray'\] have a report section"):
        _sections()
