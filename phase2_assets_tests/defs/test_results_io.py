"""Figures attached to assets: interactive pages sharing one plotly.js, and a PNG the UI shows."""

from __future__ import annotations

import base64

import plotly.graph_objects as go
import pytest

from phase2_assets.compute.report import images
from phase2_assets.defs.steps.study_tables import PLOTLY_JS, attach_figures, figures_dir


def _figs() -> dict[str, go.Figure]:
    return {
        "one": go.Figure(go.Scatter(x=[1, 2, 3], y=[0.1, 0.5, 0.2])),
        "two": go.Figure(go.Bar(x=["a", "b"], y=[3, 4])),
    }


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


def test_without_a_browser_the_pages_are_written_and_the_reason_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "browser", lambda: None)
    meta = attach_figures(tmp_path, _figs())
    folder = figures_dir(tmp_path)
    assert (folder / "one.html").exists() and not (folder / "one.png").exists()
    assert "figure_one" not in meta
    assert "Chrome or Chromium" in meta["figure_images"].value
