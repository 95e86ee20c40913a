"""Tiny studies materialised once and shared by the tests that only read them.

A whole tiny study takes seconds (its results level, the report and the figures most of them),
so the test session builds each variant once (session fixtures in the tests' conftest) and the tests
inspect it. A test that writes into the data folder works on its own copy
(``MaterialisedStudy.copy_to``), so nothing it does reaches the shared folder or another test.
The runs go to an ephemeral instance, as ``graph.materialize_study`` does by default: a test that
counts runs makes its own, and one that needs the recorded materialisations (their checksums)
has them reported into its own instance (``record_materialisations``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from phase2_assets.config import Study
from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_study


@dataclass(frozen=True)
class MaterialisedStudy:
    """A study config, the data folder its runs wrote, and those runs' in-process results."""

    study_path: Path
    data_dir: Path
    study: Study
    defs: dg.Definitions
    # The in-process results of the runs that built it, in order (empty for a copy).
    runs: tuple[dg.ExecuteInProcessResult, ...] = ()

    def fingerprint(self) -> dict[str, tuple[int, int]]:
        """(size, mtime) of every file in the data folder: the same at the end of the session
        shows that no test wrote into a shared study."""
        return {
            str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(self.data_dir.rglob("*"))
            if p.is_file()
        }

    def record_materialisations(self, instance: dg.DagsterInstance) -> None:
        """Record in ``instance`` every materialisation these runs recorded (their metadata: the
        files' sizes and SHA-256 among them), as runless events: what a test needs that checks
        what the IO managers do with an instance's records, on a copy."""
        for run in self.runs:
            for event in run.get_asset_materialization_events():
                instance.report_runless_asset_event(event.step_materialization_data.materialization)

    def copy_to(self, folder: Path) -> MaterialisedStudy:
        """This study's data folder copied to ``folder/data`` (contents and mtimes as they
        were), with definitions built on the copy: a test may write there."""
        data = Path(folder) / "data"
        shutil.copytree(self.data_dir, data)
        study, defs = gh.build(self.study_path, data)
        return MaterialisedStudy(self.study_path, data, study, defs)


def materialise_tiny_study(root: Path, beir: Path, model: Path, **overrides) -> MaterialisedStudy:
    """The tiny study (``write_tiny_study`` with ``overrides``) under ``root``: every run its
    plan asks for, materialised in process in the order ``phase2 run`` follows. The runs'
    successes are for the caller to assert."""
    root.mkdir(parents=True, exist_ok=True)
    study_path = write_tiny_study(root / "tiny.yaml", beir, model, **overrides)
    data = root / "data"
    study, defs = gh.build(study_path, data)
    runs = gh.materialize_study(study, defs)
    return MaterialisedStudy(study_path, data, study, defs, tuple(runs))
