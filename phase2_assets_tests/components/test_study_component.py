"""The study component: what ``defs/study/defs.yaml`` names is what the code location serves."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from phase2_assets.components.study import StudyComponent
from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions
from phase2_assets.testing.tiny import write_tiny_study

ROOT = Path(__file__).resolve().parents[2]


def _inventory(defs: dg.Definitions) -> tuple:
    assets = sorted(k.to_user_string() for a in defs.assets for k in a.keys)
    checks = sorted(str(k) for a in defs.assets for k in getattr(a, "check_keys", ()))
    return assets, checks, sorted(j.name for j in defs.jobs), sorted(s.name for s in defs.sensors)


def test_the_code_location_is_the_component_of_defs_yaml(monkeypatch, tmp_path):
    """``phase2_assets.definitions`` loads the defs folder, whose one component is the study:
    the same assets, checks, jobs and sensors as building the study directly."""
    monkeypatch.setenv("PHASE2_STUDY", "demo")
    monkeypatch.setenv("PHASE2_DATA_DIR", str(tmp_path))
    declared = yaml.safe_load((ROOT / "phase2_assets/defs/study/defs.yaml").read_text())
    assert declared["type"] == "phase2_assets.components.study.StudyComponent"

    from phase2_assets import definitions

    loaded = dg.Definitions.merge(definitions.defs())  # what dg, dagster dev and phase2 load
    direct = build_definitions(load_study("demo"), str(tmp_path))
    assert _inventory(loaded) == _inventory(direct)
    assert "demo" in _inventory(loaded)[3]  # the demo's tier sensor: $PHASE2_STUDY was followed


def test_the_yaml_names_the_study_and_its_data_folder(tmp_path, tiny_beir, tiny_model):
    study = write_tiny_study(tmp_path / "mine.yaml", tiny_beir, tiny_model)
    component = StudyComponent.resolve_from_yaml(
        f"config: {study}\ndata_dir: {tmp_path / 'data'}\n"
    )
    defs = component.build_defs(dg.ComponentTree.for_test().load_context)
    partitions = defs.resolve_assets_def("corpus").partitions_def
    assert partitions.get_partition_keys() == ["tiny"]
    assert defs.resources["runtime"].data_dir == str((tmp_path / "data").resolve())
