"""Numbers as a reader wants them: four significant digits, integers as integers, n/a for a
missing value. One formatter for the report, the memo and the UI previews; the tables keep the
raw values."""

from __future__ import annotations

import math


def fmt(value, missing: str = "n/a") -> str:
    """0.825667 -> '0.8257'; 8.0 -> '8'; 1536.0 -> '1,536'; 123456.7 -> '123,457'; NaN -> 'n/a'."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return missing if math.isnan(value) else ("∞" if value > 0 else "-∞")
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def significant(value: float) -> float:
    """A float kept as a number, to four significant digits (UI metadata and table cells)."""
    return float(f"{value:.4g}")
