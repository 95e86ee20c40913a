"""On what corpus sizes a claim was judged.

The plan's thresholds are written for ~500K-passage corpora. At a hundred times the corpus the
same codes rank against a hundred times the distractors, so recall at fixed bits falls with
corpus size, and a band, kill-switch or verdict reached only on a few thousand passages is not
evidence at the plan's scale. Every judgement names the sizes it rests on, and says "only" when
the largest is below the study's ``bands.full_scale_passages``.
"""

from __future__ import annotations

import polars as pl


def corpus_range(results: pl.DataFrame) -> tuple[int, int] | None:
    """(smallest, largest) n_docs of the collections in the results table."""
    if results.height == 0 or "n_docs" not in results.columns:
        return None
    docs = results.select("n_docs").drop_nulls()
    if docs.height == 0:
        return None
    return int(docs["n_docs"].min()), int(docs["n_docs"].max())


def is_small(docs: tuple[int, int] | None, full_scale_passages: int) -> bool:
    return docs is not None and docs[1] < full_scale_passages


def short(n: int) -> str:
    """1033 -> "1K", 5183 -> "5K", 500000 -> "500K", 1200000 -> "1.2M"."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}".removesuffix(".0") + "M"
    if n >= 1000:
        return f"{round(n / 1000)}K"
    return str(n)


def note(docs: tuple[int, int] | None, small: bool) -> str:
    """ "on collections of 1K–5K passages only" (below full scale) or "on collections of 500K
    passages"; "" when nothing was judged."""
    if docs is None:
        return ""
    lo, hi = short(docs[0]), short(docs[1])
    size = lo if lo == hi else f"{lo}–{hi}"
    return f"on collections of {size} passages" + (" only" if small else "")
