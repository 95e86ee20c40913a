"""The registry of retrieval methods: one module per method, one row per method in the table.

Adding a method: drop ``phase2_assets/compute/methods/<name>.py`` with a ``Method`` subclass
decorated with ``@register`` and write its known-answer test. Every module of this folder is
imported here, in name order, so nothing else is edited: the evaluation assets pick the method up
and the results table gains rows, not columns.
"""

import importlib
import pkgutil

from phase2_assets.compute.methods.base import (
    METHODS,
    Built,
    Check,
    Memory,
    Method,
    Plan,
    Settings,
    Stored,
    methods_for,
    register,
    storable,
)


def discover(paths=__path__, package: str = __name__) -> list[str]:
    """Import every method module under ``paths`` (importing registers its methods)."""
    names = sorted(m.name for m in pkgutil.iter_modules(paths) if m.name != "base")
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


discover()

__all__ = [
    "METHODS",
    "Built",
    "Check",
    "Memory",
    "Method",
    "Plan",
    "Settings",
    "Stored",
    "methods_for",
    "register",
    "storable",
]
