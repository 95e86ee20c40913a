"""Asset checks fail when they should, and a failed blocking check stops the work downstream."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_model, write_tiny_study


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("nan_model"), plant_nan=True)


def test_planted_nan_fails_norm_check_and_blocks_ground_truth(tmp_path, tiny_beir, nan_model):
    study, defs = gh.build(write_tiny_study(tmp_path / "s.yaml", tiny_beir, nan_model), tmp_path)
    assert gh.materialize(defs, "dataset", "tiny").success
    result = gh.materialize(defs, "pair", "tiny__tiny-bert")

    checks = gh.check_evaluations(result)
    norm = checks["corpus_embeddings:finite_unit_norm"]
    assert not norm.passed
    # Topic-0 documents contain the poisoned tokens: the check counts and names the rows.
    assert norm.metadata["non_finite_rows"].value > 0
    assert "first_non_finite_rows" in norm.metadata
    assert checks["corpus_embeddings:expected_shape"].passed

    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # Failed blocking checks: the poisoned vectors are not materialised at all...
    assert "corpus_embeddings" not in materialized
    assert not (tmp_path / "corpus_embeddings" / "tiny__tiny-bert.npy").exists()
    # ...and nothing is computed from them.
    assert "float_ground_truth" not in materialized
    assert "int8_index" not in materialized
    assert "reference_metrics" not in materialized


def test_clean_model_passes_the_same_checks(tmp_path, tiny_beir, tiny_model):
    study, defs = gh.build(write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model), tmp_path)
    assert gh.materialize(defs, "dataset", "tiny").success
    result = gh.materialize(defs, "pair", "tiny__tiny-bert")
    checks = gh.check_evaluations(result)
    assert checks["corpus_embeddings:finite_unit_norm"].passed
    assert checks["query_embeddings:finite_unit_norm"].passed
    assert checks["float_ground_truth:self_consistent"].passed


def test_a_failed_norm_check_keeps_the_previous_good_embeddings(
    tmp_path, tiny_beir, tiny_model, nan_model
):
    good = write_tiny_study(tmp_path / "good.yaml", tiny_beir, tiny_model)
    _, defs = gh.build(good, tmp_path)
    assert gh.materialize(defs, "dataset", "tiny").success
    assert gh.materialize(defs, "pair", "tiny__tiny-bert").success
    stored = tmp_path / "corpus_embeddings" / "tiny__tiny-bert.npy"
    before = hashlib.sha256(stored.read_bytes()).hexdigest()

    poisoned = write_tiny_study(tmp_path / "nan.yaml", tiny_beir, nan_model)
    _, defs = gh.build(poisoned, tmp_path)
    result = gh.materialize(defs, "pair", "tiny__tiny-bert")
    assert not gh.check_evaluations(result)["corpus_embeddings:finite_unit_norm"].passed
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == before
    assert np.isfinite(np.load(stored, allow_pickle=False)).all()


def test_a_model_whose_dimension_differs_from_the_config_is_not_materialised(
    tmp_path, tiny_beir, tiny_model
):
    models = {"tiny-bert": {"name": "tests/tiny-bert", "path": str(tiny_model), "dim": 48}}
    path = write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model, models=models)
    _, defs = gh.build(path, tmp_path)
    assert gh.materialize(defs, "dataset", "tiny").success
    result = gh.materialize(defs, "pair", "tiny__tiny-bert")
    assert not result.success
    text = "\n".join(
        str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure
    )
    # Refused at the first batch, before any vector is journalled: both dimensions named.
    assert "model produces 32-d vectors, expected 48" in text
    assert not (tmp_path / "corpus_embeddings" / "tiny__tiny-bert.npy").exists()
