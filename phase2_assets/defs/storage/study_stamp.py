"""Which study a store holds: ``<root>/study.json``, claimed by the study that first writes its
study-wide tables there.

A store's results are one study's: its partitions, its tiers, its thresholds. ``phase2 report``
with the default study on the demo's folder rebuilt the demo's tables from another plan, emptied
``adapter.parquet`` and turned a final YELLOW into a provisional verdict with K1 fired. So the
study-wide tables (``phase2 run``, ``phase2 report``, the results assets launched from the UI)
first check the stamp: another study's name is refused, naming both; the same study with an
edited config goes on (its hash is updated). ``phase2 report`` without a config uses the
store's own study.

The stamp lives in the study's storage root (``StudyRuntime.storage_root``): the object store
when there is one, else the data folder, so that every machine that writes the study's tables
checks the same stamp. It is written whole: one PUT on an object store, temporary file and
rename locally.
"""

from __future__ import annotations

import json
import os

from upath import UPath

from phase2_assets.defs.storage.locations import Root, is_local, local_path, write_text

STAMP = "study.json"


class OtherStudyError(ValueError):
    """The store (or data folder) holds another study's results."""


def stamp_path(root: Root) -> UPath:
    return UPath(root) / STAMP


def _where(root: UPath) -> str:
    return f"the data folder {local_path(root)}" if is_local(root) else f"the store {root}"


def read(root: Root) -> dict | None:
    """The store's stamp ({name, config_hash, config}), or None if no study claimed it yet."""
    path = stamp_path(root)
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise OtherStudyError(
            f"{path}: not a study stamp ({exc}); it says which study {_where(UPath(root))} "
            "holds. Delete it to let the next study claim it."
        ) from exc
    if not isinstance(stamp, dict) or not isinstance(stamp.get("name"), str):
        raise OtherStudyError(f"{path}: not a study stamp (no study name in it)")
    return stamp


def claim(root: Root, study, config: str | os.PathLike | None) -> dict | None:
    """Check that the store holds ``study`` (or no study yet) and record it; the earlier stamp.

    ``config`` is what ``load_study`` was given (a bundled name or a path), kept as an absolute
    path so ``phase2 report`` can load the same study again."""
    from phase2_assets.config.study import resolve_study_path

    root = UPath(root)
    before = read(root)
    if before is not None and before["name"] != study.name:
        way_out = (
            f"`phase2 report --data-dir {local_path(root)}` with no config (the folder's own "
            "study), another --data-dir for this study"
            if is_local(root)
            else "`phase2 report` with no config (the store's own study), another storage URL "
            "for this study"
        )
        raise OtherStudyError(
            f"{_where(root)} holds study {before['name']!r} (config {before.get('config')}, "
            f"hash {before.get('config_hash')}), not study {study.name!r} (hash "
            f"{study.config_hash()}): rebuilding its tables from another study would replace "
            f"its results. Use {way_out}, or delete {stamp_path(root)} to hand it over."
        )
    given = str(config or os.environ.get("PHASE2_STUDY") or "study")
    stamp = {
        "name": study.name,
        "config_hash": study.config_hash(),
        "config": str(resolve_study_path(given).resolve()),
    }
    if stamp != before:
        write_text(stamp_path(root), json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    return before
