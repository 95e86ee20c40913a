"""Binding kill-switches: an explicit gate that later runs read, whatever launched them.

Dagster's blocking checks only stop downstream steps of the same run; a backfill launched later
would go ahead. So the kill-switch asset writes its states to ``results/kill_switches.json`` and
the assets that a fired switch stops read that file before doing any work. Deleting the file (or
re-materialising the kill-switches after the results change) reopens the gate. The file lives
where the assets do, under the study's storage root (``StudyRuntime.storage_root``: its store,
else the data folder), so runs on other machines read the same gate. Every function takes that
root, never the environment, so two studies served from one process keep their own gates.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from upath import UPath

from phase2_assets.compute.data import storage
from phase2_assets.config import plan
from phase2_assets.defs.storage.locations import Root, write_text

GATE_FILE = Path("results") / "kill_switches.json"


def gate_path(root: Root) -> UPath:
    return UPath(root) / GATE_FILE.as_posix()


def write_gates(root: Root, switches: list[dict]) -> UPath:
    path = gate_path(root)
    write_text(path, storage.json_text({"switches": switches}, indent=2))
    return path


def read_gates(root: Root) -> dict[str, dict]:
    path = gate_path(root)
    if not path.exists():
        return {}
    return {s["name"]: s for s in json.loads(path.read_text())["switches"]}


def update_gates(root: Root, switches: list[dict]) -> UPath:
    """Replace the named switches' states, keeping the others and the file's other fields
    (K2 is decided in the middle of an X3 run, before the kill-switch asset runs again)."""
    path = gate_path(root)
    document = json.loads(path.read_text()) if path.exists() else {}
    merged = {s["name"]: s for s in document.get("switches", [])}
    merged.update({s["name"]: s for s in switches})
    write_text(path, storage.json_text({**document, "switches": list(merged.values())}, indent=2))
    return path


def fired(root: Root, names: tuple[str, ...]) -> list[dict]:
    return plan.fired(read_gates(root), names)


def assert_open(root: Root, names: tuple[str, ...], what: str) -> None:
    """Raise before any work when one of ``names`` has fired in the gate file."""
    hits = fired(root, names)
    if hits:
        raise dg.Failure(
            description=f"{plan.stopped_by(hits, what)}. Gate file: {gate_path(root)}",
            metadata={
                "blocked_by": ", ".join(s["name"] for s in hits),
                "gate_file": str(gate_path(root)),
            },
            allow_retries=False,
        )


def assert_expansion_open(root: Root, what: str) -> None:
    """Raise before any work when F1 or F2 has fired: Tier-2 expansion is stopped."""
    assert_open(root, plan.EXPANSION_SWITCHES, what)
