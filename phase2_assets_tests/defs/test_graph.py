"""The whole graph on a tiny random BERT and a tiny BEIR collection, through dagster.materialize."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from phase2_assets.compute.methods import METHODS, instrument
from phase2_assets.config import plan
from phase2_assets.testing import graph as gh


def test_every_run_succeeds(tiny_study_run):
    runs = tiny_study_run.runs
    assert len(runs) == 9  # dataset, pair, 4 bit lengths, results; the X3 adapter, results again
    assert [r.success for r in runs] == [True] * len(runs)


def test_results_table_has_every_method_and_bit_length(tiny_study_run):
    data = tiny_study_run.data_dir
    table = pl.read_parquet(data / "results" / "retrieval_metrics.parquet")
    got = set(zip(table["method"], table["bits"], strict=True))
    core = {("float32", 32 * 32), ("int8", 8 * 32)}
    core |= {("binary", b) for b in (8, 16, 32, 64)} | {("pq", b) for b in (8, 16, 32, 64)}
    assert core <= got
    # Every registered method (those beyond the plan too) contributes rows.
    assert set(table["method"]) == set(METHODS)
    assert table.select("dataset", "model", "method", "bits").is_unique().all()
    float_row = table.filter(pl.col("method") == "float32").row(0, named=True)
    assert float_row["recall_at_10"] == 1.0 and float_row["ndcg_at_10_vs_float"] == 1.0
    assert float_row["n_docs"] == 300 and float_row["n_queries"] == 12
    assert (table["recall_at_10"] <= 1.0).all() and (table["recall_at_10"] >= 0.0).all()
    binary = table.filter(pl.col("method") == "binary").sort("bits")
    assert binary["bytes_per_vector"].to_list() == [1.0, 2.0, 4.0, 8.0]
    # 64 random hyperplanes keep far more of the ranking than 8 do.
    assert binary["recall_at_10"][-1] > binary["recall_at_10"][0]


def test_every_error_check_passes(tiny_study_run):
    evaluations = {k: v for r in tiny_study_run.runs for k, v in gh.check_evaluations(r).items()}
    expected = {
        "corpus_embeddings:finite_unit_norm",
        "query_embeddings:finite_unit_norm",
        "corpus_embeddings:expected_shape",
        "float_ground_truth:self_consistent",
        "binary_codes:self_hamming_zero",
        "binary_codes:reproducible",
        "binary_codes:hamming_tracks_angle",
        "pq_metrics:between_random_and_float",
    }
    assert expected <= set(evaluations)
    failed = [k for k in expected if not evaluations[k].passed]
    assert failed == []


def test_stored_arrays_are_plain_npy(tiny_study_run):
    study, data = tiny_study_run.study, tiny_study_run.data_dir
    emb = np.load(data / "corpus_embeddings" / "tiny__tiny-bert.npy", allow_pickle=False)
    codes = np.load(data / "binary_codes" / "tiny__tiny-bert" / "64.npy", allow_pickle=False)
    assert emb.dtype == np.float32 and emb.shape == (300, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(codes, instrument.encode(emb, 64, study.seeds.projection))


def test_methods_extra_limits_the_methods_beyond_the_plan(tmp_path, tiny_beir, tiny_model):
    from phase2_assets.testing.tiny import write_tiny_study

    path = write_tiny_study(tmp_path / "t.yaml", tiny_beir, tiny_model, methods={"extra": ["itq"]})
    _, defs = gh.build(path, tmp_path / "data")
    assert gh.materialize(defs, "dataset", "tiny").success
    assert gh.materialize(defs, "pair", "tiny__tiny-bert").success
    assert gh.materialize(defs, "bits", plan.bits_key("tiny__tiny-bert", 32)).success
    reference = pl.read_parquet(tmp_path / "data" / "reference_metrics" / "tiny__tiny-bert.parquet")
    extra = pl.read_parquet(tmp_path / "data" / "method_metrics" / "tiny__tiny-bert" / "32.parquet")
    int8 = pl.read_parquet(tmp_path / "data" / "int8_metrics" / "tiny__tiny-bert.parquet")
    assert reference["method"].to_list() == ["float32"]
    assert int8["method"].to_list() == ["int8"]  # stored: scored by its own asset
    assert extra["method"].to_list() == ["itq"]


def test_a_method_not_stored_is_built_and_scored_where_it_is_evaluated(
    tmp_path, tiny_beir, tiny_model
):
    """methods.store decides which indexes are assets; the rows are the same either way."""
    from phase2_assets.testing.tiny import write_tiny_study

    rows = {}
    for store in (["binary", "pq", "int8"], ["binary", "pq"]):
        root = tmp_path / "-".join(store)
        root.mkdir()
        path = write_tiny_study(
            root / "t.yaml", tiny_beir, tiny_model, methods={"extra": [], "store": store}
        )
        _, defs = gh.build(path, root / "data")
        keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
        assert ("int8_index" in keys) == ("int8" in store)
        assert ("int8_metrics" in keys) == ("int8" in store)
        for level, key in (("dataset", "tiny"), ("pair", "tiny__tiny-bert")):
            assert gh.materialize(defs, level, key).success
        table = "int8_metrics" if "int8" in store else "reference_metrics"
        got = pl.read_parquet(root / "data" / table / "tiny__tiny-bert.parquet")
        rows[len(store)] = got.filter(pl.col("method") == "int8").drop(
            "search_seconds", strict=False
        )
    assert rows[3].height == 1
    assert rows[3].equals(rows[2])


def test_methods_store_refuses_a_method_that_cannot_be_stored(tmp_path, tiny_beir, tiny_model):
    from phase2_assets.config import StudyConfigError, load_study
    from phase2_assets.testing.tiny import write_tiny_study

    for store, message in (
        (["binary", "itq"], r"methods.store: 'itq' cannot be stored"),
        (["pq"], r"methods.store must list 'binary'"),
    ):
        path = write_tiny_study(
            tmp_path / "t.yaml", tiny_beir, tiny_model, methods={"store": store}
        )
        with pytest.raises(StudyConfigError, match=message):
            load_study(path)


def test_methods_extra_with_an_unknown_name_is_refused(tmp_path, tiny_beir, tiny_model):
    from phase2_assets.testing.tiny import write_tiny_study

    path = write_tiny_study(tmp_path / "t.yaml", tiny_beir, tiny_model, methods={"extra": ["lsh"]})
    with pytest.raises(ValueError, match=r"methods.extra names unknown methods \['lsh'\]"):
        gh.build(path, tmp_path / "data")


def test_a_tiny_corpus_runs_every_method_and_names_what_it_skipped(small_corpus_run):
    """100 passages: too few for PQ's and OPQ's 256 centroids. The whole plan still succeeds;
    those rows are skipped with the reason, in the log and in the planned-rows check."""
    results = small_corpus_run.runs
    assert all(r.success for r in results)
    table = pl.read_parquet(small_corpus_run.data_dir / "results" / "retrieval_metrics.parquet")
    methods = set(table["method"])
    assert {"binary", "int8", "sign", "itq"} <= methods
    assert methods == set(METHODS) - {"pq", "opq"}  # every other method has its rows
    check = next(
        ev
        for r in results
        for key, ev in gh.check_evaluations(r).items()
        if key == "results/retrieval_metrics:planned_rows_present"
    )
    meta = {k: v.value for k, v in check.metadata.items()}
    # PQ and OPQ at each of the 4 bit lengths.
    assert meta["skipped_rows"] == 8 and "k-means needs at least 256" in meta["skipped"]
    assert meta["missing_rows"] == 0 and check.passed
    # Strict JSON everywhere (too few points for some regressions: their numbers are null).
    import json

    for path in sorted(small_corpus_run.data_dir.rglob("*.json")):
        json.loads(path.read_text(), parse_constant=lambda c, p=path: pytest.fail(f"{p}: {c}"))
