"""A step that fails half way stores none of its outputs (issue 24, finding 4)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from phase2_assets_tests.defs.test_precomputed_vectors import (  # noqa: F401 (fixture)
    DIM,
    PAIR,
    _embed,
    _failure_text,
    _ids,
    _unit,
    imported,
)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_failed_import_replaces_neither_embedding(imported, tiny_beir):  # noqa: F811
    """New corpus vectors and a query id given twice: the step fails on the queries, and the
    corpus embeddings, produced first, are not replaced either (they were, before)."""
    tmp_path, defs, _, _, _ = imported
    data = tmp_path / "data"
    files = [data / "corpus_embeddings" / f"{PAIR}.npy", data / "query_embeddings" / f"{PAIR}.npy"]
    before = [_sha(f) for f in files]
    where = tmp_path / "vectors" / "tiny"
    n_rows = len(np.load(where / "corpus.npy", allow_pickle=False))
    np.save(where / "corpus.npy", _unit(n_rows, 7), allow_pickle=False)  # new corpus vectors
    ids = _ids(tiny_beir, "queries.jsonl")
    vector = pa.FixedSizeListArray.from_arrays(pa.array(_unit(len(ids) + 1, 8).reshape(-1)), DIM)
    pq.write_table(pa.table({"id": [*ids, ids[0]], "vector": vector}), where / "queries.parquet")

    result = _embed(defs)

    assert not result.success
    assert ids[0] in _failure_text(result)
    assert [_sha(f) for f in files] == before  # neither file was replaced
    stored = [e.asset_key for e in result.all_events if e.is_step_materialization]
    assert not stored


def test_a_failed_blocking_check_stores_no_ground_truth(tmp_path, tiny_study, monkeypatch):
    """The ground truth's blocking check fails (scores planted off by 0.01): the step stores
    nothing, so the earlier file and materialisation stay (before: the file was replaced and
    only downstream steps were stopped)."""
    import dagster as dg

    from phase2_assets.compute.search import exact_search
    from phase2_assets.testing import graph as gh

    instance = dg.DagsterInstance.ephemeral()
    _, defs = gh.build(tiny_study, tmp_path / "data")
    assert gh.materialize(defs, "dataset", "tiny", instance).success
    assert gh.materialize(defs, "pair", "tiny__tiny-bert", instance).success
    stored = tmp_path / "data" / "float_ground_truth" / "tiny__tiny-bert.npz"
    before = _sha(stored)
    key = dg.AssetKey("float_ground_truth")
    first = instance.get_latest_materialization_event(key).run_id
    exact = exact_search.float_topk

    def off_by_a_little(*args, **kwargs):
        scores, ids = exact(*args, **kwargs)
        return scores + 0.01, ids

    monkeypatch.setattr(exact_search, "float_topk", off_by_a_little)
    result = defs.resolve_job_def("pair_job").execute_in_process(
        partition_key="tiny__tiny-bert",
        instance=instance,
        asset_selection=[key],
        raise_on_error=False,
    )
    checks = gh.check_evaluations(result)
    assert not checks["float_ground_truth:self_consistent"].passed
    assert _sha(stored) == before
    assert instance.get_latest_materialization_event(key).run_id == first
