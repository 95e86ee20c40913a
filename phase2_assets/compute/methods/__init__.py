"""The registry of retrieval methods: one module per method, one row per method in the table.

Adding a method: drop ``phase2_assets/compute/methods/<name>.py`` with a ``Method`` subclass
decorated with ``@register`` and write its known-answer test, or ship it in a package of your own
with an entry point in the ``phase2_assets.methods`` group. Every module of this folder is imported
here, in name order, then every entry point, so nothing else is edited: the evaluation assets pick
the method up and the results table gains rows, not columns.
"""

import importlib
import pkgutil
from importlib import metadata

from phase2_assets.compute.methods.base import (
    FAMILIES,
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

ENTRY_POINTS = "phase2_assets.methods"


def discover(paths=__path__, package: str = __name__) -> list[str]:
    """Import every method module under ``paths`` (importing registers its methods)."""
    names = sorted(m.name for m in pkgutil.iter_modules(paths) if m.name != "base")
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


def plugins() -> list[str]:
    """Methods of other installed packages: each entry point of the ``phase2_assets.methods``
    group names a module (importing it registers its methods) or a ``Method`` subclass
    (registered here), so a user adds a scheme without forking."""
    loaded = []
    for entry in sorted(metadata.entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        try:
            obj = entry.load()
        except Exception as exc:
            raise ImportError(
                f"method plugin {entry.name!r} = {entry.value!r} (entry point group "
                f"{ENTRY_POINTS!r}) could not be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(obj, type) and issubclass(obj, Method) and obj.name not in METHODS:
            register(obj)
        loaded.append(entry.name)
    return loaded


discover()
plugins()

__all__ = [
    "FAMILIES",
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
