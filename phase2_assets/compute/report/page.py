"""The study report: one self-contained HTML page (plotly.js inlined once, works offline)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import plotly.graph_objects as go
import polars as pl

from phase2_assets.compute.report.numbers import fmt

COLOURS = {"GREEN": "#2ca02c", "YELLOW": "#d4a017", "RED": "#d62728"}


def markdown_table(table: pl.DataFrame, columns: list[str], missing: str = "n/a") -> str:
    """The named columns (those present) as a Markdown table, numbers formatted for reading:
    the asset previews in the UI and the design memo."""
    cols = [c for c in columns if c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(fmt(v, missing) for v in row) + " |"
        for row in table.select(cols).iter_rows()
    ]
    return "\n".join(lines)


def table_html(table: pl.DataFrame) -> str:
    if table.height == 0:
        return "<p><em>empty</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.iter_rows():
        cells = "".join(
            f"<td>{html.escape(fmt(v))}</td>"
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            else f"<td class='s'>{html.escape(fmt(v))}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(frozen=True)
class Folded:
    """A table shown folded under a one-line summary, opened on a click (the full results)."""

    summary: str
    table: pl.DataFrame


@dataclass(frozen=True)
class Links:
    """Files of the study beside the report: (text, path relative to the report, note)."""

    items: tuple[tuple[str, str, str], ...]


def links_html(links: Links) -> str:
    rows = "".join(
        f"<li><a href='{html.escape(href)}'>{html.escape(text)}</a> — {html.escape(note)}</li>"
        for text, href, note in links.items
    )
    return f"<ul>{rows}</ul>"


def figure_html(fig: go.Figure, first: bool, div_id: str) -> str:
    """A figure's div with a fixed id (plotly draws a random one), so the page is the same
    bytes on every run."""
    return fig.to_html(
        full_html=False, include_plotlyjs="inline" if first else False, div_id=div_id
    )


def standalone_figure(fig: go.Figure, plotly_js: str, div_id: str) -> str:
    """A figure as its own HTML page that loads plotly.js from ``plotly_js`` (a path relative to
    the page), so the figure pages of a study share one copy of it; a fixed div id."""
    return fig.to_html(full_html=True, include_plotlyjs=plotly_js, div_id=div_id)


def render(
    *,
    title: str,
    verdict: dict,
    switches: list[dict],
    sections: list[tuple[str, str, go.Figure | pl.DataFrame | Folded | Links | str]],
    found: pl.DataFrame | None = None,
) -> str:
    """Assemble the page: what the study found (``found``: the target bands' table), verdict,
    kill-switches, then (heading, caption, content) sections."""
    colour = verdict.get("colour", "?")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.get("reasons", []))
    switch_rows = (
        pl.DataFrame(
            [
                {
                    "switch": s["name"],
                    "state": s["state"],
                    # Why a switch could not be judged (no rows yet, its rows skipped and why).
                    "why not evaluated": s.get("why_not") or "",
                    "rule": s["rule"],
                    "numbers": ", ".join(f"{k} {fmt(v)}" for k, v in s["numbers"].items()),
                    "blocks when fired": s["blocks"],
                }
                for s in switches
            ]
        )
        if switches
        else pl.DataFrame()
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td.s{text-align:left}th{background:#f3f3f3}"
        ".wide{overflow-x:auto;max-width:100%}summary{cursor:pointer;margin:.5em 0}"
        ".verdict{font-size:28px;font-weight:bold;padding:.3em .6em;"
        "color:white;display:inline-block;border-radius:6px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        # No clock time: the same tables give the same bytes (when they were made is in the
        # materialisation's metadata).
        "<p>Generated from the tables in <code>data/results/</code>; every number below is read "
        "from them.</p>",
        *(
            [
                "<h2>What the study found</h2><p>Each experiment of the plan in its target "
                "band (Hope / Still useful / Negative), with the numbers that placed it and the "
                "corpus sizes it was judged on.</p>",
                f"<div class='wide'>{table_html(found)}</div>",
            ]
            if found is not None and found.height
            else []
        ),
        f"<h2>Verdict</h2><span class='verdict' style='background:{COLOURS.get(colour, '#777')}'>"
        f"{html.escape(colour)}</span>"
        f"{'' if verdict.get('final', True) else ' <em>(provisional)</em>'}<ul>{reasons}</ul>",
        "<h2>Kill-switches</h2>",
        table_html(switch_rows),
    ]
    first, n_figures = True, 0
    for heading, caption, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if caption:
            parts.append(f"<p>{html.escape(caption)}</p>")
        if isinstance(content, go.Figure):
            n_figures += 1
            parts.append(figure_html(content, first, f"figure-{n_figures}"))
            first = False
        elif isinstance(content, pl.DataFrame):
            parts.append(f"<div class='wide'>{table_html(content)}</div>")
        elif isinstance(content, Folded):
            parts.append(
                f"<details><summary>{html.escape(content.summary)}</summary>"
                f"<div class='wide'>{table_html(content.table)}</div></details>"
            )
        elif isinstance(content, Links):
            parts.append(links_html(content))
        else:
            parts.append(f"<p>{html.escape(str(content))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
