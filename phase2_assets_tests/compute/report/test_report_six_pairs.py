"""The report at six (dataset, model) pairs and every registered method, read in a real headless
Chromium as a reader opens it (offline): one small multiple per pair where one chart would
overlap, every legend complete with nothing to scroll, the page no wider than the window.

The tables are hand-made (the layout is under test, not the numbers), shaped as the study
writes them: ``local.yaml``'s six collections x MiniLM at four bit lengths."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from phase2_assets.compute.analysis import bands as bands_lib
from phase2_assets.compute.methods import METHODS
from phase2_assets.compute.report import page, sections
from phase2_assets.testing.browser import offline_page, require_browser, screenshots

pytestmark = pytest.mark.ui

PAIRS = [(d, "minilm") for d in ("cacm", "cisi", "cranfield", "med", "msmarco-dl19", "scifact")]
BITS = (64, 128, 256, 512)
FEATURES = ["anisotropy_centred", "outlier_fraction", "intrinsic_dim_90"]


def _results() -> pl.DataFrame:
    rows = []
    for p, (dataset, model) in enumerate(PAIRS):
        for m, (name, method) in enumerate(sorted(METHODS.items())):
            for b, bits in enumerate(BITS if method.budget == "bits" else (None,)):
                recall = min(1.0, 0.3 + 0.12 * b + 0.01 * m + 0.02 * p)
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "method": name,
                        "bits": bits or 12288,
                        "bytes_per_vector": (bits or 12288) / 8,
                        "recall_at_10": recall,
                        "ndcg_at_10": 0.8 * recall,
                        "ndcg_at_10_vs_float": recall,
                        "n_docs": 1000 + 800 * p,
                    }
                )
    return pl.DataFrame(rows)


def _tables() -> dict[str, pl.DataFrame]:
    per_pair = [{"dataset": d, "model": m} for d, m in PAIRS]
    geometry = pl.DataFrame(
        [
            {
                **pair,
                "bits": bits,
                "anisotropy_centred": 2.0 + i,
                "outlier_fraction": 0.01 * i,
                "intrinsic_dim_90": 100 + 10 * i,
                "hamming_histogram": [1] * (bits + 1),
            }
            for i, pair in enumerate(per_pair)
            for bits in BITS
        ]
    )
    bfi = pl.DataFrame(
        [
            {**pair, "bfi": 0.55 + 0.05 * i, "recall_at_10_256": 0.6 + 0.04 * i}
            for i, pair in enumerate(per_pair)
        ]
    )
    regression = pl.DataFrame(
        {
            "target": ["recall_at_10_within_bits"],
            "model": ["ridge"],
            "n_points": [24],
            "loocv_r2": [0.229],
            "loocv_rmse": [0.02],
            "spearman_rho": [0.557],
            "r2_ci_low": [0.05],
            "r2_ci_high": [0.41],
            "status": ["fitted"],
        }
    )
    ladder = pl.DataFrame(
        [
            {
                **pair,
                "method": method,
                "bits": 256,
                "corpus_docs": docs,
                "recall_at_10": 0.9 - 0.05 * r - (0.1 if method == "binary" else 0),
            }
            for pair in per_pair
            for method in ("binary", "pq")
            for r, docs in enumerate((1000, 2000, 5000))
        ]
    )
    return {"geometry": geometry, "bfi": bfi, "regression": regression, "ladder": ladder}


def _report(path: Path) -> pl.DataFrame:
    results, t = _results(), _tables()
    found = bands_lib.table(
        [
            {
                "experiment": e,
                "question": bands_lib.QUESTIONS[e],
                "band": bands_lib.USEFUL,
                "reading": "a reading",
                "why_not": "",
                "scale": "on collections of 1K–5K passages only",
            }
            for e in bands_lib.EXPERIMENTS
        ]
    )
    shown = sections.report_sections(
        results, t["regression"], t["geometry"], t["bfi"], FEATURES, ladder=t["ladder"]
    )
    path.write_text(
        page.render(title="six pairs", verdict={}, switches=[], sections=shown, found=found),
        encoding="utf-8",
    )
    return results


def test_the_report_reads_at_six_pairs(tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    report = tmp_path / "report.html"
    results = _report(report)
    methods = set(results["method"])
    pair_titles = {f"{d} × {m}" for d, m in PAIRS}
    refused = []
    with sync_playwright() as pw:
        browser, page_ = offline_page(pw, refused)
        page_.goto(report.as_uri())
        plots = page_.locator(".js-plotly-plot")
        plots.first.locator(".main-svg").first.wait_for()
        titles = {}
        for i in range(plots.count()):
            plot = plots.nth(i)
            plot.scroll_into_view_if_needed()
            title = plot.locator(".gtitle").first.text_content() or f"figure {i}"
            titles[title] = plot
            for bar in plot.locator(".legend .scrollbar").all():
                assert float(bar.get_attribute("height") or 0) == 0, title  # nothing to scroll
        assert page_.evaluate("document.documentElement.scrollWidth") <= 1400  # fits the page

        def figure(starting: str):
            (found,) = [p for t, p in titles.items() if t.startswith(starting)]
            return found

        frontier = figure("Quality–memory frontier (recall_at_10")
        subplot_titles = set(frontier.locator(".annotation-text").all_text_contents())
        assert pair_titles <= subplot_titles  # one panel per pair
        legend = set(frontier.locator(".legend .traces .legendtext").all_text_contents())
        assert methods <= legend  # every method, each once in the legend
        ladder = figure("Recall at fixed bits against corpus size")
        assert pair_titles <= set(ladder.locator(".annotation-text").all_text_contents())
        assert {"binary @ 256 bits", "pq @ 256 bits"} <= set(
            ladder.locator(".legend .traces .legendtext").all_text_contents()
        )
        bfi = figure("Binary Friendliness Index (X1), ranked")
        assert bfi.locator(".bars .point").count() == len(PAIRS)  # one bar per pair, ranked
        geometry = figure("Geometry of the float embeddings")
        assert geometry.locator(".bars .point").count() == len(PAIRS) * len(FEATURES)
        # The method x bits table per pair: one heading per pair.
        for d, m in PAIRS:
            heading = f"recall_at_10 by method and bits — {d} × {m}"
            assert page_.get_by_role("heading", name=heading).count() == 1
        page_.screenshot(path=screenshots(tmp_path) / "report_six_pairs.png", full_page=True)
        browser.close()
    assert refused == []
