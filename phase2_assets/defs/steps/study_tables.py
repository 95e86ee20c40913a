"""Shared wiring for the study-wide tables: collecting partitions and attaching figures."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import dagster as dg
import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs
from upath import UPath

from phase2_assets.compute.report import figure_registry
from phase2_assets.compute.report.figure_registry import FigureSettings
from phase2_assets.compute.report.images import render_png
from phase2_assets.compute.report.numbers import significant
from phase2_assets.compute.report.page import standalone_figure
from phase2_assets.defs.storage.locations import Root, write_bytes, write_text


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


def results_dir(root: Root) -> UPath:
    """The study-wide tables' folder, under the study's storage root
    (``StudyRuntime.storage_root``: its store, else the data folder)."""
    return UPath(root) / "results"


def side_table_path(root: Root, name: str) -> UPath:
    """``results/<name>.parquet``: a table beside the study-wide tables, not an asset of its own."""
    return results_dir(root) / f"{name}.parquet"


def write_side_table(root: Root, name: str, table: pl.DataFrame) -> None:
    """Write ``side_table_path`` whole (temporary file and rename, or one PUT)."""
    buffer = io.BytesIO()
    table.write_parquet(buffer)
    write_bytes(side_table_path(root, name), buffer.getvalue())


def figures_dir(root: Root) -> UPath:
    """Beside the results tables, under the study's storage root."""
    return results_dir(root) / "figures"


def attach_figures(root: Root, figs: dict[str, go.Figure]) -> dict:
    """Write each figure as an interactive HTML page (all pages share one ``plotly.min.js``
    beside them) and a PNG, and return metadata that shows the PNG inline on the asset."""
    folder = figures_dir(root)
    if figs:
        shared_plotly(folder)
    images, why_not = render_png(figs)
    meta = {}
    for name, fig in figs.items():
        page = folder / f"{name}.html"
        write_text(page, standalone_figure(fig, PLOTLY_JS, f"figure-{name}"))
        meta[f"figure_{name}_html"] = dg.MetadataValue.path(str(page))
        if name in images:
            write_bytes(folder / f"{name}.png", images[name])
            encoded = base64.b64encode(images[name]).decode("ascii")
            meta[f"figure_{name}"] = dg.MetadataValue.md(
                f"![{name}](data:image/png;base64,{encoded})"
            )
    if why_not:
        meta["figure_images"] = dg.MetadataValue.text(f"not rendered: {why_not}")
    return meta


def attach_registered(
    root: Root,
    asset: dg.AssetKey,
    tables: Mapping[str, pl.DataFrame | None],
    settings: FigureSettings | None = None,
    drawn: Mapping[str, go.Figure] | None = None,
) -> dict:
    """Attach the figures the registry says ``asset`` shows, drawn from ``tables`` (or taken
    from ``drawn`` when the asset has drawn them already for its own output)."""
    mine = figure_registry.attached_by(asset.to_user_string())
    return attach_figures(root, figure_registry.draw(mine, tables, settings, drawn))


PLOTLY_JS = "plotly.min.js"


def shared_plotly(folder: UPath) -> None:
    """The one copy of plotly.js the figure pages load (about 4.7 MB, written when it differs)."""
    text = get_plotlyjs()
    target = folder / PLOTLY_JS
    if not (target.exists() and target.stat().st_size == len(text.encode("utf-8"))):
        write_text(target, text)


_TYPES = {pl.String: "string", pl.Boolean: "bool"}


def _cell(value):
    """A table cell for the UI: floats to four significant digits, integral floats as ints."""
    if isinstance(value, float):
        if value != value:  # NaN: no JSON number for it
            return None
        return int(value) if value.is_integer() else significant(value)
    return value


def table_metadata(table: pl.DataFrame, columns: dict[str, str]) -> dg.TableMetadataValue:
    """The named columns (those present) as a table the Dagster UI renders, with a schema that
    says what each column is (``columns``: name -> description)."""
    cols = [c for c in columns if c in table.columns]
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                c,
                _TYPES.get(table.schema[c], "int" if table.schema[c].is_integer() else "float"),
                description=columns[c],
            )
            for c in cols
        ]
    )
    records = [
        dg.TableRecord({c: _cell(v) for c, v in zip(cols, row, strict=True)})
        for row in table.select(cols).iter_rows()
    ]
    return dg.MetadataValue.table(records, schema=schema)
