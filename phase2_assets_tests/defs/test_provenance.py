"""Provenance metadata: complete, and short enough to read in the UI's metadata table."""

from __future__ import annotations

import platform
from importlib import metadata

from phase2_assets.config import load_study
from phase2_assets.defs.provenance import provenance


def test_library_versions_are_one_line_with_every_library():
    meta = provenance(load_study("demo"), projection=42)
    line = meta["library_versions"].value
    assert "\n" not in line and "{" not in line
    assert f"dagster {metadata.version('dagster')}" in line
    assert f"faiss-cpu {metadata.version('faiss-cpu')}" in line
    assert f"python {platform.python_version()}" in line
    assert meta["seed_projection"] == 42 and len(meta["config_hash"]) == 16
