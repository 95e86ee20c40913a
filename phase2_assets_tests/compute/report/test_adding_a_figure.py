"""docs/extending/a-figure.md's recipe, run as written: the block appended to ``figures.py`` is
the only edit, and the figure reaches its asset's metadata and the report's sections."""

from __future__ import annotations

import dagster as dg
import plotly.graph_objects as go
import polars as pl
import pytest

from phase2_assets.compute.report import figure_registry, figures, images, page, sections
from phase2_assets.defs.steps.study_tables import attach_registered, figures_dir
from phase2_assets.testing.recipes import doc_block

RECIPE = "extending/a-figure.md"


def recipe() -> str:
    return doc_block(RECIPE, "figure-recipe")


@pytest.fixture
def appended():
    """The recipe run in ``figures.py``'s namespace, as if appended to it; the registry is put
    back afterwards, so the figure does not leak into other tests."""
    before = figure_registry.registered()
    exec(compile(recipe(), f"docs/{RECIPE}", "exec"), dict(vars(figures)))  # noqa: S102
    yield figure_registry.FIGURES["recall_by_bits"]
    figure_registry.FIGURES.clear()
    figure_registry.FIGURES.update({f.name: f for f in before})


def _results() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset": ["d"] * 4,
            "model": ["m"] * 4,
            "method": ["binary", "binary", "pq", "pq"],
            "bits": [64, 128, 64, 128],
            "bytes_per_vector": [8.0, 16.0, 8.0, 16.0],
            "recall_at_10": [0.2, 0.35, 0.3, 0.5],
            "ndcg_at_10": [0.2, 0.3, 0.25, 0.4],
        }
    )


def test_the_recipe_registers_a_figure_the_report_asset_attaches(appended):
    assert appended in figure_registry.attached_by("results/report")
    assert figure_registry.registered()[-1] is appended  # after every existing figure


def test_the_new_figure_is_attached_to_its_asset(appended, tmp_path, monkeypatch):
    monkeypatch.setattr(images, "browser", lambda: None)  # the page is enough; no PNG here
    key = dg.AssetKey(["results", "report"])
    meta = attach_registered(tmp_path, key, {"retrieval_metrics": _results()})
    assert [k for k in meta if k.endswith("_html")] == [
        "figure_frontier_recall_at_10_html",
        "figure_frontier_ndcg_at_10_html",
        "figure_recall_by_bits_html",
    ]
    assert (figures_dir(tmp_path) / "recall_by_bits.html").exists()


def test_the_new_figure_opens_the_report_after_the_frontiers(appended):
    empty = pl.DataFrame()
    shown = sections.report_sections(_results(), empty, empty, empty, [])
    titles = [title for title, _, _ in shown]
    assert titles[:4] == [
        "Quality–memory frontier",
        "Task quality (nDCG@10 against qrels)",
        "recall_at_10 by bits",
        "Binary vs PQ at matched memory",
    ]
    _, caption, fig = shown[2]
    assert caption == "mean over the (dataset, model) pairs; one line per method"
    assert isinstance(fig, go.Figure) and [t.name for t in fig.data] == ["binary", "pq"]
    html = page.render(title="t", verdict={}, switches=[], sections=shown)
    assert html.index("<h2>recall_at_10 by bits</h2>") < html.index('id="figure-3"')


def test_the_registry_is_as_before_once_the_recipe_is_gone():
    assert "recall_by_bits" not in figure_registry.FIGURES
