"""Static PNGs of the study's figures, for the Dagster UI: it shows an image in an asset's
metadata inline but runs no JavaScript there, so an interactive plotly page cannot be shown.

The PNG is plotly's own export (kaleido driving a headless Chrome or Chromium) of the very figure
the report draws, not a second drawing of it. Without kaleido or a browser the figures are still
written as HTML and the reason is returned for the asset's metadata; nothing fails.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

WIDTH = 1100  # px; the Dagster metadata panel scales the image to its width
BROWSER_ENV = ("BROWSER_PATH", "PHASE2_CHROMIUM")  # kaleido's own variable, then the tests'
# "0" skips the PNGs (the interactive pages are still written): a headless browser costs seconds
# of CPU per study-wide run, which a server that nobody browses, or a test, can do without.
STATIC_IMAGES_ENV = "PHASE2_STATIC_IMAGES"


def static_images_off() -> bool:
    return os.environ.get(STATIC_IMAGES_ENV, "1").strip().lower() in ("0", "false", "no", "off")


def browser() -> str | None:
    """The Chrome/Chromium kaleido will drive: ``$BROWSER_PATH``, ``$PHASE2_CHROMIUM``, or the
    first of the usual names on ``PATH``."""
    for env in BROWSER_ENV:
        if (path := os.environ.get(env)) and shutil.which(path):
            return shutil.which(path)
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    return None


def render_png(figures: dict[str, go.Figure]) -> tuple[dict[str, bytes], str | None]:
    """Every figure as PNG bytes in one browser session, or ``({}, why not)``."""
    if not figures:
        return {}, None
    if static_images_off():
        return {}, f"static images are off (${STATIC_IMAGES_ENV}=0)"
    try:
        import kaleido  # noqa: F401 - plotly's exporter; optional at import time
    except ImportError:
        return {}, "static images need the kaleido package (pip install kaleido)"
    found = browser()
    if found is None:
        return {}, (
            "static images need Chrome or Chromium: install one, or set BROWSER_PATH "
            "(kaleido can also fetch one: `plotly_get_chrome`)"
        )
    names = list(figures)
    with tempfile.TemporaryDirectory(prefix="phase2-png-") as tmp:
        paths = [Path(tmp) / f"{i}.png" for i in range(len(names))]
        try:
            _serve(found)
            with warnings.catch_warnings():  # "kopts are ignored when using a server"
                warnings.simplefilter("ignore")
                pio.write_images(
                    [figures[n] for n in names],
                    paths,
                    format="png",
                    width=WIDTH,
                    height=[figures[n].layout.height or 500 for n in names],
                )
        except Exception as exc:  # noqa: BLE001 - kaleido/browser failures are many and opaque
            return {}, f"static image export failed ({type(exc).__name__}: {exc})"[:300]
        return {n: p.read_bytes() for n, p in zip(names, paths, strict=True)}, None


_SERVING: list[str] = []


def _serve(browser_path: str) -> None:
    """One headless browser per process, started at the first export and stopped at exit:
    starting Chrome costs about 3 s, an export with it running about 0.3 s."""
    if _SERVING:
        return
    import kaleido

    os.environ.setdefault("BROWSER_PATH", browser_path)
    kaleido.start_sync_server(silence_warnings=True)
    atexit.register(kaleido.stop_sync_server, silence_warnings=True)
    _SERVING.append(browser_path)
