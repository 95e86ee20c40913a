"""Figures attached to assets: interactive pages sharing one plotly.js, and a PNG the UI shows;
each asset attaches the figures the registry names for it."""

from __future__ import annotations

import base64

import dagster as dg
import plotly.graph_objects as go
import polars as pl
import pytest

from phase2_assets.compute.report import figure_registry, images
from phase2_assets.defs.steps.study_tables import (
    PLOTLY_JS,
    attach_figures,
    attach_registered,
    figures_dir,
)


def _figs() -> dict[str, go.Figure]:
    return {
        "one": go.Figure(go.Scatter(x=[1, 2, 3], y=[0.1, 0.5, 0.2])),
        "two": go.Figure(go.Bar(x=["a", "b"], y=[3, 4])),
    }


@pytest.mark.static_images
def test_figure_pages_share_one_plotly_copy_and_the_png_is_inline(tmp_path):
    if images.browser() is None:
        pytest.skip("no Chrome/Chromium for kaleido on this machine")
    meta = attach_figures(tmp_path, _figs())
    folder = figures_dir(tmp_path)
    js = folder / PLOTLY_JS
    assert js.stat().st_size > 1_000_000  # plotly.js itself, once
    for name in ("one", "two"):
        page = (folder / f"{name}.html").read_text()
        assert f'src="{PLOTLY_JS}"' in page and len(page) < 100_000  # not inlined again
        png = (folder / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        shown = meta[f"figure_{name}"].value
        assert shown == f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
    assert "figure_images" not in meta


@pytest.mark.static_images  # on, so the missing browser is what stops them
def test_without_a_browser_the_pages_are_written_and_the_reason_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "browser", lambda: None)
    meta = attach_figures(tmp_path, _figs())
    folder = figures_dir(tmp_path)
    assert (folder / "one.html").exists() and not (folder / "one.png").exists()
    assert "figure_one" not in meta
    assert "Chrome or Chromium" in meta["figure_images"].value


def test_static_images_off_writes_the_pages_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(images.STATIC_IMAGES_ENV, "0")
    monkeypatch.setattr(images, "browser", lambda: pytest.fail("no browser is looked for"))
    meta = attach_figures(tmp_path, _figs())
    folder = figures_dir(tmp_path)
    assert (folder / "two.html").exists() and not list(folder.glob("*.png"))
    assert meta["figure_images"].value == (
        "not rendered: static images are off ($PHASE2_STATIC_IMAGES=0)"
    )


def _pages(meta: dict) -> list[str]:
    return [k for k in meta if k.startswith("figure_") and k.endswith("_html")]


def test_an_asset_attaches_the_figures_the_registry_names_for_it(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "browser", lambda: None)
    regression = dg.AssetKey(["results", "regression"])
    predictions = pl.DataFrame({"model": ["ridge"], "actual": [0.5], "predicted": [0.4]})
    meta = attach_registered(tmp_path, regression, {"predictions": predictions})
    assert _pages(meta) == ["figure_predicted_vs_actual_html"]
    assert attach_registered(tmp_path, regression, {"predictions": None}) == {}  # not fitted
    bfi = pl.DataFrame({"dataset": ["d"], "model": ["m"], "bfi": [0.4]})
    meta = attach_registered(tmp_path, dg.AssetKey(["results", "bfi"]), {"bfi": bfi})
    assert _pages(meta) == ["figure_bfi_ranking_html"]
    assert attach_registered(tmp_path, dg.AssetKey(["results", "bfi"]), {"bfi": bfi.clear()}) == {}


def test_every_figure_is_attached_by_an_asset_of_the_graph(tiny_study, tmp_path):
    from phase2_assets.testing import graph as gh

    _, defs = gh.build(tiny_study, tmp_path / "data")
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f.attached_by for f in figure_registry.registered()} <= keys
