"""The registry of dataset sources: where a collection comes from and how its files are read.

Built in: ``beir_folder`` (the dataset's ``path``, or its folder under PHASE2_BEIR_DIR) and
``beir_zip`` (the BEIR download, cached in the download folder). Adding a format
(docs/extending/a-dataset-source.md): drop a module into this folder with a ``Source`` subclass
decorated with ``@register``; every module here is imported, in name order. The collection asset
asks each source in turn for the dataset and reads it with the first that answers; the BEIR
sources are asked last (the folder takes any ``path``, the zip any name), so a new format claims
its folders first.
"""

from __future__ import annotations

from pathlib import Path

from phase2_assets.compute.data.beir import Collection
from phase2_assets.compute.data.sources.base import (
    SOURCES,
    Request,
    Source,
    from_frames,
    register,
    sample_rows,
)
from phase2_assets.compute.plugin_folders import import_modules

ASKED_LAST = ("beir_folder", "beir_zip")


def asked() -> list[Source]:
    """The sources in the order a dataset is offered to them."""
    first = [s for kind, s in SOURCES.items() if kind not in ASKED_LAST]
    return first + [SOURCES[kind] for kind in ASKED_LAST if kind in SOURCES]


def locate(request: Request) -> tuple[Source, Path]:
    """The first source that finds the dataset, and the folder it found."""
    for source in asked():
        folder = source.locate(request)
        if folder is not None:
            return source, folder
    raise LookupError(
        f"dataset {request.name!r}: no source found it (asked {', '.join(SOURCES) or 'none'})"
    )


def load(request: Request) -> tuple[Source, Path, Collection]:
    source, folder = locate(request)
    return source, folder, source.read(folder, request)


def discover(paths=__path__, package: str = __name__) -> list[str]:
    """Import every source module under ``paths`` (importing registers its sources)."""
    return import_modules(paths, package, skip=("base",))


discover()

__all__ = [
    "ASKED_LAST",
    "SOURCES",
    "Collection",
    "Request",
    "Source",
    "asked",
    "discover",
    "from_frames",
    "load",
    "locate",
    "register",
    "sample_rows",
]
