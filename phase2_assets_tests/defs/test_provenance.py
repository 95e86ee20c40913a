"""Provenance metadata: complete, and short enough to read in the UI's metadata table."""

from __future__ import annotations

import platform
from importlib import metadata

from phase2_assets.config import load_study
from phase2_assets.defs.steps.provenance import outcome_metadata, provenance


def test_library_versions_are_one_line_with_every_library():
    meta = provenance(load_study("demo"), projection=42)
    line = meta["library_versions"].value
    assert "\n" not in line and "{" not in line
    assert f"dagster {metadata.version('dagster')}" in line
    assert f"faiss-cpu {metadata.version('faiss-cpu')}" in line
    assert f"python {platform.python_version()}" in line
    assert len(meta["config_hash"]) == 16


def test_given_numbers_are_text_so_the_ui_charts_only_what_was_measured():
    """The UI charts each numeric entry over time: a seed or a threshold would be a flat line."""
    assert provenance(load_study("demo"), projection=42)["seed_projection"].value == "42"
    meta = outcome_metadata({"threshold": 0.5, "pairs": 4, "best_recall_at_10": 0.71234567})
    assert meta["threshold"].value == "0.5" and meta["pairs"].value == "4"
    assert meta["best_recall_at_10"] == 0.7123  # measured: a number, charted, 4 digits
