"""``python -m phase2_assets.compute.methods.table [--write [PATH]]``: the methods table of
``docs/methods.md``, generated from the registry so that a method's row is written once, in its
module, and the page cannot drift from the code.

Each row comes from the method class: ``family``, ``budget``/``follows``, ``description``,
``code_bytes``, ``fits_when``, ``also_counted`` and ``peer``, and its parameters from its
``Params`` schema. Measured numbers are not facts of a method; ``bench.method_tables`` prints
them from a results table. ``code_bytes`` and ``fits_when`` are formulas in b (bits) and d
(dimension) written as a reader reads them (``4·d``, ``⌈d/8⌉``, ``b/8 ≤ d``,
``32 divides b, b/32 ≤ d``); ``evaluate`` reads them back, so a test holds them to the method's
``memory`` and ``fits``.
"""

from __future__ import annotations

import argparse
import ast
import math
import operator
import re
import sys
from pathlib import Path

from phase2_assets.compute.methods import FAMILIES, METHODS, Method

BEGIN, END = "<!-- methods:begin -->", "<!-- methods:end -->"
DOC = Path("docs/methods.md")
COMMAND = "python -m phase2_assets.compute.methods.table --write"
PACKAGE = Method.__module__.rsplit(".", 1)[0]  # also when run as __main__


def built_in() -> list[Method]:
    """The methods of this package (not a plugin's, nor a test's), by family, the plan's first."""

    def key(m: Method):
        return list(FAMILIES).index(m.family), not m.in_plan, m.budget != "bits", m.name

    mine = [m for m in METHODS.values() if type(m).__module__.rsplit(".", 1)[0] == PACKAGE]
    return sorted(mine, key=key)


def evaluate(formula: str, b: int | None, d: int):
    """A ``code_bytes`` or ``fits_when`` formula's value at b bits and d dimensions (a
    condition's clauses are separated by commas, all must hold)."""
    values = []
    for clause in formula.split(","):
        text = re.sub(r"⌈(.+?)⌉", r"ceil(\1)", clause).replace("·", "*").replace("²", "**2")
        text = re.sub(r"(\S+) divides (\S+)", r"(\2) % (\1) == 0", text).replace("≤", "<=")
        values.append(_arithmetic(ast.parse(text.strip(), mode="eval").body, {"b": b, "d": d}))
    return all(values) if len(values) > 1 else values[0]


_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.Eq: operator.eq,
    ast.LtE: operator.le,
    ast.Lt: operator.lt,
    ast.GtE: operator.ge,
    ast.Gt: operator.gt,
}


def _arithmetic(node: ast.expr, names: dict[str, int | None]):
    """The value of a formula's syntax tree: numbers, b and d, arithmetic, comparisons and
    ``ceil`` only (no ``eval``: a formula is data, and anything else in it is an error)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _arithmetic(node.left, names), _arithmetic(node.right, names)
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _OPERATORS:
        left, right = _arithmetic(node.left, names), _arithmetic(node.comparators[0], names)
        return _OPERATORS[type(node.ops[0])](left, right)
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ceil" and node.args:
        return math.ceil(_arithmetic(node.args[0], names))
    raise ValueError(f"not a formula in b and d: {ast.unparse(node)!r}")


# Where a row's formulas are held to the method: every whole-byte code length up to 4096 bits, at
# dimensions of real encoders and odd ones.
DIMS = (32, 100, 384, 768, 1000, 1024)
BITS = tuple(range(8, 4097, 8))


def check(m: Method) -> list[str]:
    """Where the row's ``code_bytes`` and ``fits_when`` disagree with ``memory`` and ``fits``
    (empty when they agree, or when the row has none to check)."""
    wrong = []
    for d in DIMS:
        for b in (None,) if m.budget == "reference" else BITS:
            fits = m.fits(d, b)
            said = evaluate(m.fits_when, b, d) if m.fits_when else True
            if b is not None and said != fits:
                wrong.append(f"{m.name}: fits_when {m.fits_when!r} is {said} at b={b}, d={d}")
            if fits and m.code_bytes:
                got, said = m.memory(d, b).bytes_per_vector, evaluate(m.code_bytes, b, d)
                if got != said:
                    wrong.append(
                        f"{m.name}: code_bytes {m.code_bytes!r} is {said} at b={b}, d={d}; "
                        f"memory() says {got}"
                    )
    return wrong


def _budget(m: Method) -> str:
    if m.budget == "reference":
        return "each model"
    sizes = "each planned PQ size" if m.follows == "pq" else "each planned code length"
    return f"{sizes} ({m.fits_when})" if m.fits_when else sizes


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _name(m: Method) -> str:
    tags = [t for t, on in (("plan", m.in_plan), ("storable", m.stored is not None)) if on]
    return f"`{m.name}`" + (f" ({', '.join(tags)})" if tags else "")


def methods_table(methods: list[Method]) -> list[str]:
    lines = []
    for family, label in FAMILIES.items():
        rows = [m for m in methods if m.family == family]
        if not rows:
            continue
        lines += [
            f"### {label}",
            "",
            "| method | rows at | what it is | code bytes / vector | also counted | peer |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {_name(m)} | {_budget(m)} | {_cell(m.description)} | {m.code_bytes or '?'} | "
            f"{_cell(m.also_counted)} | {_cell(m.peer or 'none')} |"
            for m in rows
        ]
        lines.append("")
    return lines


def params_table(methods: list[Method]) -> list[str]:
    lines = ["### Parameters", "", "| study config key | default | meaning |", "|---|---|---|"]
    for m in sorted(methods, key=lambda m: m.name):
        for key, info in m.Params.model_fields.items():
            lines.append(
                f"| `methods.{m.name}.{key}` | {info.default!r} | {_cell(info.description or '')} |"
            )
    return lines


def render() -> str:
    """The generated part of the page, markers included."""
    methods = built_in()
    body = [f"<!-- generated by `{COMMAND}`; edit the method modules, not this table -->", ""]
    body += methods_table(methods) + params_table(methods)
    return "\n".join([BEGIN, *body, END])


def rewrite(page: str) -> str:
    """``page`` with its generated part replaced by the registry's current one."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no {BEGIN} ... {END} markers")
    return page[:start] + render() + page[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", nargs="?", const=DOC, type=Path, help=f"rewrite the page (default {DOC})"
    )
    args = parser.parse_args(argv)
    if args.write is None:
        print(render())
        return 0
    page = args.write.read_text(encoding="utf-8")
    new = rewrite(page)
    if new != page:
        args.write.write_text(new, encoding="utf-8")
    print(f"{args.write}: {'rewritten' if new != page else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
