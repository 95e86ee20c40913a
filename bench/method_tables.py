"""``python -m bench.method_tables [RESULTS] [--pair dataset__model]``: the measured method
tables, printed from a finished run's results table with the date, the commit and the threads,
so the numbers quoted in bench/RESULTS.md are regenerated, never typed.

Each method's peer (what a search engineer already runs that it reproduces) is the one its class
declares, as in docs/methods.md; a method without one, or no longer registered, says none.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
from pathlib import Path

import polars as pl

from phase2_assets.compute.methods import METHODS


def peer(method: str) -> str:
    """What the method reproduces or stands for, as its class declares it."""
    registered = METHODS.get(method)
    return (registered.peer if registered is not None else None) or "none"


def _cell(row: dict | None) -> str:
    if row is None:
        return "—"
    return f"{row['recall_at_10']:.3f} / {row['ndcg_at_10']:.3f}"


def tables(results: pl.DataFrame, pair: str | None = None) -> str:
    pairs = results.select("dataset", "model").unique().sort("dataset", "model").rows()
    dataset, model = pair.split("__", 1) if pair else pairs[0]
    rows = results.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
    dim = int(rows.filter(pl.col("method") == "float32")["bits"][0]) // 32
    by = {(r["method"], int(r["bits"])): r for r in rows.iter_rows(named=True)}
    budgets = sorted({b for (m, b) in by if b < 8 * dim and m in ("binary", "pq")})
    bit_methods = sorted({m for (m, b) in by if b in budgets} - {"float32"})
    bit_methods = ["binary", "pq", *[m for m in bit_methods if m not in ("binary", "pq")]]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    threads = os.environ.get("PHASE2_THREADS") or f"{os.cpu_count()} cores"
    lines = [
        f"{dataset} × {model}, recall_at_10 / ndcg_at_10; {dt.date.today().isoformat()}, commit "
        f"{commit or 'unknown'}, {threads}:",
        "",
        "| bits | " + " | ".join(bit_methods) + " |",
        "|---|" + "---|" * len(bit_methods),
    ]
    for b in budgets:
        lines.append(f"| {b} | " + " | ".join(_cell(by.get((m, b))) for m in bit_methods) + " |")
    lines += [
        "",
        "| reference method | bits | recall_at_10 / ndcg_at_10 | peer |",
        "|---|---|---|---|",
    ]
    reference = sorted(
        ((m, b) for (m, b) in by if m not in bit_methods or b not in budgets),
        key=lambda mb: (mb[1], mb[0]),
    )
    for m, b in reference:
        lines.append(f"| {m} | {b} | {_cell(by[(m, b)])} | {peer(m)} |")
    lines += ["", "| bit-budget method | peer |", "|---|---|"]
    lines += [f"| {m} | {peer(m)} |" for m in bit_methods]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results", nargs="?", default="data/results/retrieval_metrics.parquet", type=Path
    )
    parser.add_argument("--pair", default=None, help="dataset__model (default: the first pair)")
    args = parser.parse_args()
    print(tables(pl.read_parquet(args.results), args.pair))


if __name__ == "__main__":
    main()
