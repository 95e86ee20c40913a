"""The daemon-launched runs of the hands-off study in the stack's web UI (headless Chromium):
the job page lists each sensor-launched run, and the asset's checks are there. Screenshots go to
``$PHASE2_TEST_ARTIFACTS/ui`` (CI keeps them)."""

from __future__ import annotations

import dagster as dg
import pytest

from phase2_assets.testing import stack as st
from phase2_assets.testing.browser import dismiss_welcome, require_browser, screenshots

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.ui]


def test_the_daemon_launched_runs_show_on_the_job_page(stack, hands_off, tmp_path):
    executable = require_browser()
    from playwright.sync_api import expect, sync_playwright

    runs = stack.instance.get_runs(dg.RunsFilter(job_name="bits_job"))
    launched = [r for r in runs if r.tags.get("dagster/sensor_name")]
    assert len(launched) >= len(st.STACK_TIER["bits"])
    shots = screenshots(tmp_path)
    url = stack.stack.webserver_url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/locations/__repository__@phase2_assets/jobs/bits_job/runs")
        dismiss_welcome(page)
        expect(page.get_by_text("bits_job").first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=shots / "stack_daemon_runs.png", full_page=True)
        for run in launched:
            expect(page.get_by_text(run.run_id[:8]).first).to_be_visible(timeout=30_000)
        expect(page.get_by_text("tier1").first).to_be_visible()  # "Launched by" the sensor
        page.screenshot(path=shots / "stack_daemon_runs.png", full_page=True)
        page.goto(f"{url}/assets/binary_codes?view=checks")
        expect(page.get_by_text("self_hamming_zero").first).to_be_visible(timeout=60_000)
        page.screenshot(path=shots / "stack_checks.png", full_page=True)
        browser.close()
