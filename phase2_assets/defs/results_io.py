"""Shared wiring for the study-wide tables: collecting partitions and attaching figures."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import plotly.graph_objects as go
import polars as pl
from upath import UPath

from phase2_assets.compute.report.page import standalone_figure
from phase2_assets.defs.locations import is_local, storage_root, write_text


def all_partitions() -> dg.AssetIn:
    """Every materialised partition of a partitioned upstream; missing ones are skipped."""
    return dg.AssetIn(
        partition_mapping=dg.AllPartitionMapping(), metadata={"allow_missing_partitions": True}
    )


def optional_table(*key: str) -> dg.AssetIn:
    """A study-wide table read if it has been materialised, else None."""
    return dg.AssetIn(key=list(key), metadata={"allow_missing": True})


def frames(loaded) -> list[pl.DataFrame]:
    """The IO manager gives one frame when the asset has one partition, else a dict of them."""
    if loaded is None:
        return []
    if isinstance(loaded, pl.DataFrame):
        return [loaded] if loaded.height else []
    return [t for t in loaded.values() if t.height]


def figures_dir(data_dir: str | Path) -> UPath:
    """Beside the results tables: under the data folder, or ``$PHASE2_STORAGE_URL``."""
    return storage_root(data_dir) / "results" / "figures"


def attach_figure(data_dir: str | Path, name: str, fig: go.Figure) -> dict:
    """Write ``fig`` as an offline HTML page and return metadata linking it from the asset."""
    path = figures_dir(data_dir) / f"{name}.html"
    write_text(path, standalone_figure(fig))
    link = f"file://{path}" if is_local(path) else str(path)
    return {
        f"figure_{name}": dg.MetadataValue.path(str(path)),
        f"figure_{name}_link": dg.MetadataValue.md(f"[{name}]({link})"),
    }
