"""A BEIR-layout folder on this machine: the dataset's ``path``, or its folder under
PHASE2_BEIR_DIR (``beir_name``, else the dataset's name)."""

from __future__ import annotations

from pathlib import Path

from phase2_assets.compute.data import beir
from phase2_assets.compute.data.sources.base import Request, Source, register


@register
class BeirFolder(Source):
    kind = "beir_folder"

    def locate(self, request: Request) -> Path | None:
        if request.path:
            folder = Path(request.path).expanduser()
            if not folder.is_dir():
                raise FileNotFoundError(f"dataset {request.name!r}: path {folder} is not a folder")
            return folder
        if request.beir_dir:
            folder = Path(request.beir_dir).expanduser() / request.folder_name
            if folder.is_dir():
                return folder
        return None

    def read(self, folder: Path, request: Request) -> beir.Collection:
        return beir.load_collection(folder, request.split, request.sample_size, request.seed)
