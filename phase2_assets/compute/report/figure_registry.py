"""The registry of the study's figures: each declared once, with everything both of its readers
need, so the asset that attaches it and the report that shows it draw the same figure from the
same table and nothing else has to name its builder.

The declarations live beside their builders at the end of ``figures.py``; that module imports
this one, so it is loaded on the first lookup here rather than at import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import plotly.graph_objects as go
import polars as pl

NAME = re.compile(r"[a-z][a-z0-9_]*")  # a file stem and part of a metadata key


@dataclass(frozen=True)
class FigureSettings:
    """What a figure may read from the study's config besides its table."""

    features: tuple[str, ...] = ()  # the geometry features the analysis fits on


@dataclass(frozen=True)
class Figure:
    """One figure of the study.

    ``name`` is its file stem under ``results/figures/`` and its metadata keys (``figure_<name>``,
    ``figure_<name>_html``), so renaming one changes the study's outputs. ``attached_by`` is the
    user string of the asset key that shows it in the Dagster UI (``"results/geometry"``);
    ``section`` is its heading in the report, or None for a figure shown on its asset only.
    In the report a figure opens its table's part, after the figures of that table registered
    before it. A table without rows draws nothing unless ``drawn_when_empty``: an empty frontier
    still says "no results" where the reader looks for one.
    """

    name: str
    table: str
    draw: Callable[[pl.DataFrame, FigureSettings], go.Figure]
    attached_by: str
    section: str | None = None
    caption: str | Callable[[pl.DataFrame], str] = ""
    drawn_when_empty: bool = False

    def caption_for(self, table: pl.DataFrame) -> str:
        return self.caption(table) if callable(self.caption) else self.caption

    def drawn_from(self, table: pl.DataFrame | None) -> bool:
        return table is not None and (table.height > 0 or self.drawn_when_empty)


FIGURES: dict[str, Figure] = {}  # in registration order, which is the report's order


def register(figure: Figure) -> Figure:
    if not NAME.fullmatch(figure.name):
        raise ValueError(f"figure name {figure.name!r} is not a lower-case identifier")
    if figure.name in FIGURES:
        raise ValueError(f"figure {figure.name!r} is registered twice; give one another name")
    FIGURES[figure.name] = figure
    return figure


def registered() -> list[Figure]:
    from phase2_assets.compute.report import figures  # noqa: F401 - importing declares them

    return list(FIGURES.values())


def attached_by(asset: str) -> list[Figure]:
    return [f for f in registered() if f.attached_by == asset]


def in_report() -> list[Figure]:
    return [f for f in registered() if f.section is not None]


def draw(
    figures: Iterable[Figure],
    tables: Mapping[str, pl.DataFrame | None],
    settings: FigureSettings | None = None,
    drawn: Mapping[str, go.Figure] | None = None,
) -> dict[str, go.Figure]:
    """Each figure whose table is in ``tables`` with rows (or may be empty), by name, in the
    given order; one already in ``drawn`` is taken from there, so a materialisation that
    attaches the figures it also shows draws each once."""
    settings, drawn = settings or FigureSettings(), drawn or {}
    out = {}
    for figure in figures:
        if figure.name in drawn:
            out[figure.name] = drawn[figure.name]
        elif figure.drawn_from(tables.get(figure.table)):
            out[figure.name] = figure.draw(tables[figure.table], settings)
    return out
