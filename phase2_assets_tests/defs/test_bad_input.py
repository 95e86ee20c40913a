"""Bad input fails with a message naming file and line, and never touches earlier results."""

from __future__ import annotations

import shutil

import pytest

from phase2_assets.config import StudyConfigError, load_study
from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_study


def _failure_text(result) -> str:
    return "\n".join(
        str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure
    )


def test_malformed_jsonl_fails_with_file_line_and_keeps_earlier_results(
    tmp_path, tiny_beir, tiny_model
):
    beir = tmp_path / "beir"
    shutil.copytree(tiny_beir, beir)
    study, defs = gh.build(
        write_tiny_study(tmp_path / "s.yaml", beir, tiny_model), tmp_path / "data"
    )
    assert gh.materialize(defs, "dataset", "tiny").success
    corpus_file = tmp_path / "data" / "corpus" / "tiny.parquet"
    before = corpus_file.read_bytes()

    lines = (beir / "corpus.jsonl").read_text().splitlines()
    lines[41] = '{"_id": "d41", "title": "broken'
    (beir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    result = gh.materialize(defs, "dataset", "tiny")

    assert not result.success
    assert f"{beir / 'corpus.jsonl'}:42: malformed JSON" in _failure_text(result)
    assert corpus_file.read_bytes() == before
    assert not list((tmp_path / "data" / "corpus").glob(".tmp-*"))


def test_missing_dataset_folder_names_the_env_var(tmp_path, tiny_model):
    path = write_tiny_study(tmp_path / "s.yaml", tmp_path / "nowhere", tiny_model)
    study, defs = gh.build(path, tmp_path / "data")
    result = gh.materialize(defs, "dataset", "tiny")
    assert not result.success
    assert "is not a folder" in _failure_text(result)


def test_unknown_model_in_tier_is_a_config_error(tmp_path, tiny_beir, tiny_model):
    path = write_tiny_study(
        tmp_path / "s.yaml",
        tiny_beir,
        tiny_model,
        tiers={"t": {"datasets": ["tiny"], "models": ["nope"], "bits": [8], "pq_bytes": [1]}},
    )
    with pytest.raises(StudyConfigError, match=r"s\.yaml.*unknown model 'nope'"):
        load_study(str(path))
