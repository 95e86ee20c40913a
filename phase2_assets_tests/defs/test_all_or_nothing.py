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
