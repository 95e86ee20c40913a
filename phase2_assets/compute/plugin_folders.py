"""Registries filled by importing a folder: every module in it registers what it defines, so
adding a method or a data source is dropping a module there, with nothing else to edit."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def import_modules(paths: Iterable[str], package: str, skip: Iterable[str] = ()) -> list[str]:
    """Import every module under ``paths`` as part of ``package`` in name order (``skip``: the
    folder's modules that register nothing); the names imported."""
    skip = set(skip)
    names = sorted(m.name for m in pkgutil.iter_modules(paths) if m.name not in skip)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
