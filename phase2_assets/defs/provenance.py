"""Metadata every asset records so a number can be traced to the exact code, config and data."""

from __future__ import annotations

import platform
from importlib import metadata as importlib_metadata

import dagster as dg

from phase2_assets.config import Study

_LIBRARIES = ("numpy", "faiss-cpu", "torch", "sentence-transformers", "polars", "dagster")


def library_versions() -> dict[str, str]:
    versions = {}
    for lib in _LIBRARIES:
        try:
            versions[lib] = importlib_metadata.version(lib)
        except importlib_metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def provenance(study: Study, **seeds: int) -> dict:
    meta = {
        "study": study.name,
        "config_hash": study.config_hash(),
        # One line, not a JSON block that takes a third of every metadata table.
        "library_versions": dg.MetadataValue.text(
            " · ".join(f"{lib} {v}" for lib, v in sorted(library_versions().items()))
        ),
    }
    for name, value in seeds.items():
        meta[f"seed_{name}"] = value
    return meta


def check_metadata(context, meta: dict) -> dict:
    """A partitioned asset's check result, saying which partition it judged: Dagster keeps check
    results per asset, not per partition, so the UI shows the latest one with this key."""
    return {"partition": str(context.partition_key), **outcome_metadata(meta)}


def outcome_metadata(meta: dict) -> dict:
    """Scalar numbers and strings for the UI: floats rounded for reading, other types dropped."""
    return {
        k: (round(v, 6) if isinstance(v, float) else v)
        for k, v in meta.items()
        if isinstance(v, (int, float, str, bool))
    }
