"""The registry of retrieval methods: one module per method, one row per method in the table.

Adding a method (docs/extending/a-method.md): drop ``phase2_assets/compute/methods/<name>.py``
with a ``Method`` subclass decorated with ``@register`` that also says what the methods table
says of it (its peer, code bytes, ...), and write its known-answer test, or ship it in a package
of your own with an entry point in the ``phase2_assets.methods`` group. Every module of this
folder is imported here, in name order, then every entry point, so nothing else is edited: the
evaluation assets pick the method up, the results table gains rows, not columns, and
``docs/methods.md`` is regenerated from the registry (``table``).
"""

import sys
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
from phase2_assets.compute.plugin_folders import import_modules

ENTRY_POINTS = "phase2_assets.methods"
# Modules of this folder that define no method: the base classes, and the methods table's
# command (imported here, ``python -m`` would run a second copy of it).
NOT_METHODS = ("base", "table")


def discover(paths=__path__, package: str = __name__) -> list[str]:
    """Import every method module under ``paths`` (importing registers its methods)."""
    try:
        return import_modules(paths, package, skip=NOT_METHODS)
    except ValueError as exc:
        clash = _clash(exc)
        if clash is None:
            raise
        raise ValueError(f"{clash}; give one of them another name") from exc


def _origin(cls: type, files: dict[str, str] | None = None) -> str:
    """A method class's module, and its file (from the traceback while it is being imported)."""
    module = sys.modules.get(cls.__module__)
    where = getattr(module, "__file__", None) or (files or {}).get(cls.__module__)
    return f"{cls.__module__} ({where})" if where else cls.__module__


def _taken_by(cls: type[Method], files: dict[str, str] | None = None) -> str:
    """Which two modules define the method name ``cls`` asks for."""
    return (
        f"method {cls.name!r} is defined twice: by {_origin(type(METHODS[cls.name]))} and by "
        f"{_origin(cls, files)}"
    )


def _clash(exc: BaseException) -> str | None:
    """If ``exc`` is ``register`` refusing a name already taken, which two modules define it
    (read from the refused class in ``register``'s frame)."""
    files: dict[str, str] = {}
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        files[frame.f_globals.get("__name__", "")] = frame.f_code.co_filename
        if frame.f_code is register.__code__:
            cls = frame.f_locals.get(frame.f_code.co_varnames[0])
            if isinstance(cls, type) and getattr(cls, "name", None) in METHODS:
                return _taken_by(cls, files)
        tb = tb.tb_next
    return None


def plugins() -> list[str]:
    """Methods of other installed packages: each entry point of the ``phase2_assets.methods``
    group names a module (importing it registers its methods) or a ``Method`` subclass
    (registered here), so a user adds a scheme without forking. A plugin method named like one
    already registered (a built-in's ``pq``, another plugin's) is an error naming both modules;
    it never replaces the other or is dropped in silence."""
    loaded = []
    for entry in sorted(metadata.entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        dist = getattr(entry, "dist", None)
        where = (
            f"method plugin {entry.name!r} = {entry.value!r} (entry point group "
            f"{ENTRY_POINTS!r}{f', package {dist.name!r}' if dist is not None else ''})"
        )
        try:
            obj = entry.load()
        except Exception as exc:
            clash = _clash(exc)
            if clash is not None:
                raise ImportError(f"{where}: {clash}; rename the plugin's method") from exc
            raise ImportError(f"{where} could not be loaded: {type(exc).__name__}: {exc}") from exc
        if isinstance(obj, type) and issubclass(obj, Method):
            if obj.name not in METHODS:
                register(obj)
            elif type(METHODS[obj.name]) is not obj:  # not this class, registered on import
                raise ImportError(f"{where}: {_taken_by(obj)}; rename the plugin's method")
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
