"""Which study a data folder holds: ``<data>/study.json``, claimed by the study that first writes
its study-wide tables there.

A folder's results are one study's: its partitions, its tiers, its thresholds. ``phase2 report``
with the default study on the demo's folder rebuilt the demo's tables from another plan, emptied
``adapter.parquet`` and turned a final YELLOW into a provisional verdict with K1 fired. So the
study-wide tables (``phase2 run``, ``phase2 report``, the results assets launched from the UI)
first check the stamp: another study's name is refused, naming both; the same study with an
edited config goes on (its hash is updated). ``phase2 report`` without a config uses the
folder's own study.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from phase2_assets.compute.data import storage

STAMP = "study.json"


class OtherStudyError(ValueError):
    """The data folder holds another study's results."""


def stamp_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / STAMP


def read(data_dir: str | os.PathLike) -> dict | None:
    """The folder's stamp ({name, config_hash, config}), or None if no study claimed it yet."""
    path = stamp_path(data_dir)
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise OtherStudyError(
            f"{path}: not a study stamp ({exc}); it says which study this data folder holds. "
            "Delete it to let the next study claim the folder."
        ) from exc
    if not isinstance(stamp, dict) or not isinstance(stamp.get("name"), str):
        raise OtherStudyError(f"{path}: not a study stamp (no study name in it)")
    return stamp


def claim(data_dir: str | os.PathLike, study, config: str | os.PathLike | None) -> dict | None:
    """Check that the folder holds ``study`` (or no study yet) and record it; the earlier stamp.

    ``config`` is what ``load_study`` was given (a bundled name or a path), kept as an absolute
    path so ``phase2 report`` can load the same study again."""
    from phase2_assets.config.study import resolve_study_path

    before = read(data_dir)
    if before is not None and before["name"] != study.name:
        raise OtherStudyError(
            f"the data folder {Path(data_dir)} holds study {before['name']!r} (config "
            f"{before.get('config')}, hash {before.get('config_hash')}), not study "
            f"{study.name!r} (hash {study.config_hash()}): rebuilding its tables from another "
            f"study would replace its results. Use `phase2 report --data-dir {Path(data_dir)}` "
            "with no config (the folder's own study), another --data-dir for this study, or "
            f"delete {stamp_path(data_dir)} to hand the folder over."
        )
    given = str(config or os.environ.get("PHASE2_STUDY") or "study")
    stamp = {
        "name": study.name,
        "config_hash": study.config_hash(),
        "config": str(resolve_study_path(given).resolve()),
    }
    if stamp != before:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        with storage.atomic_path(stamp_path(data_dir), suffix=".json") as tmp:
            tmp.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return before
