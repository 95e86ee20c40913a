"""The BEIR download: a zip fetched once (verified against its checksum, atomically) into the
download folder and unpacked there; later runs read the unpacked folder."""

from __future__ import annotations

from pathlib import Path

from phase2_assets.compute.data import download
from phase2_assets.compute.data.sources.base import Request, register
from phase2_assets.compute.data.sources.beir_folder import BeirFolder

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


@register
class BeirZip(BeirFolder):
    """Asked last: it takes every dataset that no folder holds, downloading it if allowed."""

    kind = "beir_zip"

    def locate(self, request: Request) -> Path:
        name, folder_name = request.name, request.folder_name
        url = request.url or BEIR_URL.format(name=folder_name)
        target = Path(request.download_dir) / folder_name
        if (target / "corpus.jsonl").exists():
            return target
        if not request.allow_download:
            beir_dir = request.beir_dir
            where = f"{beir_dir}/{folder_name}" if beir_dir else "PHASE2_BEIR_DIR (unset)"
            raise FileNotFoundError(
                f"dataset {name!r}: no local copy at {where} and downloads are disabled; "
                f"set PHASE2_BEIR_DIR to a folder holding {folder_name}/ or allow downloads ({url})"
            )
        return download_beir(url, Path(request.download_dir), folder_name, request.checksum)


def download_beir(
    url: str, download_dir: Path, folder_name: str, checksum: str | None = None
) -> Path:
    """Fetch a BEIR zip (verified, atomic) unless already here, then unpack it atomically."""
    zip_target = download_dir / f"{folder_name}.zip"
    if not zip_target.exists():
        download.fetch(url, zip_target, checksum)
    elif checksum:
        download.verify(zip_target, checksum)
    return download.unpack(zip_target, download_dir, folder_name)
