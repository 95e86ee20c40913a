"""The Dagster web UI as a researcher uses it, in a real headless Chromium.

``dagster dev`` serves this code location on a free loopback port against a temporary instance
(the ``dagster.yaml`` that ``phase2`` writes) and the demo's names on tiny data. The test opens
the asset lineage, launches one demo dataset partition and then one (dataset, model) partition
through the webserver's GraphQL API (what the Materialize button sends), waits for both runs, and
checks in the browser that the materialisation, its metadata and its asset-check results are
shown. Screenshots go to ``$PHASE2_TEST_ARTIFACTS/ui`` (default: the test's temporary folder).

Needs Playwright's Python package and a Chromium on the machine (Debian's ``/usr/bin/chromium`` or
``$PHASE2_CHROMIUM``); no browser is downloaded. Without them the test skips, unless
``PHASE2_REQUIRE_UI_TEST=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phase2_assets.testing.browser import (
    chromium,
    dismiss_welcome,
    offline_page,
    require_browser,
)
from phase2_assets.testing.dagster_dev import dagster_dev, dagster_env, demo_named_study

pytestmark = [pytest.mark.ui, pytest.mark.static_images]  # a figure's PNG on its asset

DATASET, PAIR = "scifact", "scifact__minilm"  # the demo's keys, on the tiny data


@pytest.fixture
def webserver(tmp_path, tiny_beir, tiny_model):
    require_browser()
    study = demo_named_study(tmp_path / "demo.yaml", tiny_beir, tiny_model)
    with dagster_dev(tmp_path, dagster_env(tmp_path, study)) as server:
        yield server


def test_lineage_launch_and_check_results_in_a_real_browser(webserver, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("PHASE2_TEST_ARTIFACTS") or tmp_path) / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)

        # Lineage: the whole graph, in the plan's four groups.
        page.goto(f"{webserver.url}/asset-groups")
        dismiss_welcome(page)
        for group in ("core", "analysis", "exploratory", "report"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        page.wait_for_timeout(1500)  # the graph animates its layout
        page.screenshot(path=shots / "lineage_groups.png")

        # Launch one dataset partition, then one (dataset, model) partition.
        assert webserver.wait(webserver.launch("dataset_job", DATASET)) == "SUCCESS"
        assert webserver.wait(webserver.launch("pair_job", PAIR)) == "SUCCESS"

        # The embeddings' lineage: upstream data, downstream search and analysis, by group.
        page.goto(f"{webserver.url}/assets/corpus_embeddings?view=lineage")
        for neighbour in ("corpus", "float_ground_truth", "binary_codes", "embedding_geometry"):
            expect(page.get_by_text(neighbour, exact=True).first).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=shots / "lineage.png")

        # The partition's materialisation and its metadata, as the asset page shows them.
        page.goto(f"{webserver.url}/assets/corpus_embeddings?view=partitions&partition={PAIR}")
        expect(page.get_by_text("Latest materialization").first).to_be_visible()
        for shown in ("config_hash", "device", "docs_per_second", "array_sha256"):
            expect(page.get_by_text(shown, exact=True).first).to_be_visible()
        expect(page.get_by_text("(300, 32)").first).to_be_visible()  # the shape, 300 passages
        page.screenshot(path=shots / "partition_metadata.png", full_page=True)

        # Its asset checks and their results.
        page.goto(f"{webserver.url}/assets/corpus_embeddings?view=checks")
        for check in ("finite_unit_norm", "expected_shape"):
            expect(page.get_by_text(check, exact=True).first).to_be_visible()
        expect(page.get_by_text("Succeeded")).to_have_count(2)
        expect(page.get_by_text("Passed").first).to_be_visible()
        expect(page.get_by_text(PAIR, exact=True).first).to_be_visible()  # the partition judged
        page.screenshot(path=shots / "partition_checks.png", full_page=True)

        # The tiers as sensors, stopped until a researcher switches one on.
        page.goto(f"{webserver.url}/automation")
        for tier in ("demo", "tier3"):
            expect(page.get_by_text(tier, exact=True).first).to_be_visible()
        page.screenshot(path=shots / "tiers.png")
        browser.close()

    for name in (
        "lineage_groups.png",
        "lineage.png",
        "partition_metadata.png",
        "partition_checks.png",
        "tiers.png",
    ):
        assert (shots / name).stat().st_size > 10_000, name


@pytest.fixture
def after_phase2(tmp_path, tiny_beir, tiny_model, monkeypatch):
    """``phase2 run`` on the demo's names, then ``dagster dev`` on the same instance."""
    require_browser()
    from phase2_assets.cli import main

    study = demo_named_study(tmp_path / "demo.yaml", tiny_beir, tiny_model)
    env = dagster_env(tmp_path, study)
    for key in ("DAGSTER_HOME", "PHASE2_STUDY", "PHASE2_DATA_DIR", "PHASE2_EXECUTOR"):
        monkeypatch.setenv(key, env[key])
    assert main(["run", str(study), "--data-dir", env["PHASE2_DATA_DIR"]]) == 0
    with dagster_dev(tmp_path, env) as server:
        yield server


def test_phase2_runs_show_on_the_job_pages_and_the_timeline(after_phase2, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    runs = after_phase2.runs()
    codes_runs = [r for r in runs if r["job"] == "bits_job"]
    assert len(codes_runs) == 2 and all(r["status"] == "SUCCESS" for r in runs)
    shots = Path(os.environ.get("PHASE2_TEST_ARTIFACTS") or tmp_path) / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{after_phase2.url}/locations/__repository__@phase2_assets/jobs/bits_job/runs")
        dismiss_welcome(page)
        for run in codes_runs:  # the job's Runs tab lists the runs phase2 made
            expect(page.get_by_text(run["id"][:8]).first).to_be_visible()
        page.screenshot(path=shots / "job_runs.png", full_page=True)
        page.goto(f"{after_phase2.url}/overview/activity/timeline")
        for job in ("dataset_job", "pair_job", "bits_job", "results_job"):
            expect(page.get_by_text(job, exact=True).first).to_be_visible()
        # The code location's row counts every run phase2 made; bits_job's bar holds its two.
        expect(page.get_by_text(str(len(runs)), exact=True).first).to_be_visible()
        expect(page.get_by_text(str(len(codes_runs)), exact=True).first).to_be_visible()
        page.wait_for_timeout(1000)
        page.screenshot(path=shots / "timeline.png", full_page=True)

        # The kill-switches: a switch that cannot be judged on this data is Skipped, never a
        # green Succeeded; the asset's summary counts each state.
        import json

        from phase2_assets.defs.storage import gates

        gate = gates.gate_path(Path(os.environ["PHASE2_DATA_DIR"]))
        states = {s["name"]: s["state"] for s in json.loads(gate.read_text())["switches"]}
        skipped = sorted(n for n, state in states.items() if state == "not evaluated")
        assert skipped and len(skipped) < len(states)  # both kinds on this page
        page.goto(f"{after_phase2.url}/assets/results/kill_switches?view=checks")
        for name in states:
            expect(page.get_by_text(name, exact=True).first).to_be_visible()
        page.wait_for_timeout(1000)
        page.screenshot(path=shots / "kill_switch_checks.png", full_page=True)
        # One line per switch in the list, plus the first switch's latest result beside it.
        first = sorted(states)[0]
        expect(page.get_by_text("Skipped", exact=True)).to_have_count(
            len(skipped) + (first in skipped)
        )
        clear = [n for n, state in states.items() if state == "clear"]
        expect(page.get_by_text("Succeeded", exact=True)).to_have_count(
            len(clear) + (first in clear)
        )
        page.goto(f"{after_phase2.url}/assets/results/kill_switches?view=events")
        expect(page.get_by_text(f"{len(skipped)} not evaluated", exact=False).first).to_be_visible()
        page.screenshot(path=shots / "kill_switch_states.png", full_page=True)

        # What the study found: one check per experiment on the bands asset, each a warning
        # (Hope passes; Still useful and Negative warn) or Skipped when it could not be judged.
        bands = json.loads((Path(os.environ["PHASE2_DATA_DIR"]) / "results/target_bands.json")
                           .read_text())["bands"]  # fmt: skip
        page.goto(f"{after_phase2.url}/assets/results/target_bands?view=checks")
        for band in bands:
            expect(page.get_by_text(band["experiment"], exact=True).first).to_be_visible()
        not_judged = [b for b in bands if b["band"] == "not judged"]
        assert len(bands) == 12 and 0 < len(not_judged) < 12  # both kinds on this page
        page.wait_for_timeout(1000)
        page.screenshot(path=shots / "target_band_checks.png", full_page=True)

        # The study-wide results as a table with its columns, on the asset's latest event.
        page.goto(f"{after_phase2.url}/assets/results/retrieval_metrics?view=events")
        for column in RESULT_COLUMNS:
            expect(page.locator("th", has_text=column).first).to_be_visible()
        expect(page.get_by_text("Show schema").first).to_be_visible()
        page.screenshot(path=shots / "results_table.png", full_page=True)

        # A figure as an image on its asset: the report's frontier, opened from its metadata.
        page.goto(f"{after_phase2.url}/assets/results/report?view=events")
        row = page.locator("tr", has=page.get_by_text("figure_frontier_recall_at_10", exact=True))
        row.get_by_text("[Show Markdown]").click()
        image = page.locator("img[alt='frontier_recall_at_10']")
        expect(image).to_be_visible()
        assert image.evaluate("i => i.naturalWidth") >= 1000  # a real, decoded PNG
        page.wait_for_timeout(500)
        page.screenshot(path=shots / "figure_on_asset.png")
        browser.close()
    for name in ("job_runs", "kill_switch_checks", "results_table", "figure_on_asset"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name
    _report_legend_shows_every_method_without_scrolling(shots)


RESULT_COLUMNS = ("dataset", "model", "method", "bits", "bytes_per_vector", "recall_at_10")


def _report_legend_shows_every_method_without_scrolling(shots: Path) -> None:
    """The report as a reader opens it: offline (every network request refused), the frontier's
    legend has one entry per method of the results table and no scroll bar."""
    import polars as pl
    from playwright.sync_api import sync_playwright

    results = Path(os.environ["PHASE2_DATA_DIR"]) / "results"
    methods = set(pl.read_parquet(results / "retrieval_metrics.parquet")["method"])
    assert len(methods) >= 12
    refused = []
    with sync_playwright() as pw:
        browser, page = offline_page(pw, refused)
        page.goto((results / "report.html").as_uri())
        frontier = page.locator(".js-plotly-plot").first
        frontier.locator(".legend").wait_for()
        entries = frontier.locator(".legend .traces .legendtext").all_text_contents()
        shown = [e for e in entries if e in methods]
        assert sorted(shown) == sorted(methods)  # each method once, none missing
        for bar in frontier.locator(".legend .scrollbar").all():
            assert float(bar.get_attribute("height") or 0) == 0  # nothing to scroll
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400  # fits the page
        frontier.screenshot(path=shots / "report_frontier.png")
        browser.close()
    assert refused == []  # the page needed nothing from the network
