"""Headless Chromium for the UI tests (Debian's chromium through playwright, no download)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def chromium() -> str | None:
    for candidate in (os.environ.get("PHASE2_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def require_browser() -> str:
    """The Chromium to drive; the test skips without one, or fails under
    ``PHASE2_REQUIRE_UI_TEST=1`` (CI)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    found = chromium()
    if found is None:
        reason = "no Chromium on this machine (set PHASE2_CHROMIUM)"
        if os.environ.get("PHASE2_REQUIRE_UI_TEST") == "1":
            pytest.fail(f"UI test required but {reason}")
        pytest.skip(reason)
    return found


def screenshots(default: Path) -> Path:
    """Where screenshots go: ``$PHASE2_TEST_ARTIFACTS/ui`` (CI's artifacts), else ``default``."""
    shots = Path(os.environ.get("PHASE2_TEST_ARTIFACTS") or default) / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def dismiss_welcome(page) -> None:
    """A fresh instance greets its first visitor with a newsletter dialog; skip it."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: no dialog this time
        return
    skip.click()


def offline_page(pw, refused: list[str], width: int = 1400, height: int = 1000):
    """Headless Chromium's (browser, page) as a reader opens a report offline: every request
    that is not a local file is refused and its URL appended to ``refused``."""
    browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file:")
            else (refused.append(route.request.url), route.abort())
        ),
    )
    return browser, page
