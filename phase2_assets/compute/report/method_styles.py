"""How a method looks in every figure: the same colour and marker in each figure and each run,
so a reader who learnt it in one figure finds it in the next."""

from __future__ import annotations

# Each family its own hues, so a legend group reads as one kind of method; within a family,
# colour and marker both change from method to method, so no two methods look alike.
PALETTES = {
    "binary": [
        "#d62728",
        "#ff7f0e",
        "#8c564b",
        "#e377c2",
        "#bcbd22",
        "#9c6d00",
        "#f7b6d2",
        "#ad494a",
        "#ffbb78",
        "#843c39",
    ],
    "pq": ["#1f77b4", "#17becf", "#6baed6", "#393b79"],
    "scalar": ["#2ca02c", "#9467bd", "#637939", "#98df8a", "#c5b0d5", "#31a354"],
    "reduced": ["#7f7f7f", "#5254a3", "#b5cf6b"],
    "reference": ["#000000", "#525252"],
}
SYMBOLS = [
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "triangle-down",
    "cross",
    "x",
    "pentagon",
    "hexagon",
    "star",
]


def family_of(method: str) -> str:
    from phase2_assets.compute.methods import METHODS

    return METHODS[method].family if method in METHODS else "binary"


def style(method: str) -> dict:
    """A method's colour and marker: fixed by its place among the registered methods of its
    family, so it looks the same in every figure and every run."""
    from phase2_assets.compute.methods import METHODS

    family = family_of(method)
    peers = sorted(m for m, spec in METHODS.items() if spec.family == family)
    i = peers.index(method) if method in peers else len(peers)
    palette = PALETTES[family]
    return {"color": palette[i % len(palette)], "symbol": SYMBOLS[i % len(SYMBOLS)]}


def ordered_methods(methods) -> list[str]:
    """Legend order: by family (binary codes, PQ family, scalar, fewer dimensions, reference),
    then by name."""
    from phase2_assets.compute.methods import FAMILIES

    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(set(methods), key=lambda m: (rank[family_of(m)], m))
