"""Metadata every asset records so a number can be traced to the exact code, config and data."""

from __future__ import annotations

import platform
from importlib import metadata as importlib_metadata

import dagster as dg

from phase2_assets.compute.report.numbers import fmt, significant
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
        meta[f"seed_{name}"] = dg.MetadataValue.text(str(value))  # given, so never charted
    return meta


def check_metadata(context, meta: dict) -> dict:
    """A partitioned asset's check result, saying which partition it judged: Dagster keeps check
    results per asset, not per partition, so the UI shows the latest one with this key."""
    return {"partition": str(context.partition_key), **outcome_metadata(meta)}


# Numbers the config or the sample size fixes (a threshold, how many pairs were sampled): shown as
# text, because the UI charts every numeric entry over time and a chart of a constant says nothing.
GIVEN = frozenset(
    {
        "threshold",
        "threshold_pp",
        "tolerance",
        "pairs",
        "benchmarks",
        "n_points",
        "sampled_codes",
        "sampled_rows",
        "code_pairs",
        "n_pairs",
    }
)


def outcome_metadata(meta: dict) -> dict:
    """Scalar numbers and strings for the UI: measured floats to four significant digits,
    given numbers (``GIVEN``) as text, other types dropped."""
    out = {}
    for k, v in meta.items():
        if not isinstance(v, (int, float, str, bool)):
            continue
        if k in GIVEN and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = dg.MetadataValue.text(fmt(v))
        else:
            out[k] = significant(v) if isinstance(v, float) else v
    return out
