"""A model that is a folder of vectors: imported into the embedding assets, bad files refused."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phase2_assets.compute.data import storage
from phase2_assets.config import StudyConfigError, load_study
from phase2_assets.defs.graph import jobs
from phase2_assets.testing import graph as gh
from phase2_assets.testing.recipes import doc_block
from phase2_assets.testing.tiny import write_tiny_study

PAIR = "tiny__vectors"
DIM = 32


def _ids(beir, name: str) -> list[str]:
    return [json.loads(line)["_id"] for line in (beir / name).read_text().splitlines()]


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _write(folder, beir, corpus: np.ndarray, queries: np.ndarray) -> None:
    """Corpus as .npy + ids, shuffled, with one id the collection lacks; queries as Parquet."""
    where = folder / "tiny"
    where.mkdir(parents=True, exist_ok=True)
    doc_ids = _ids(beir, "corpus.jsonl")
    order = np.random.default_rng(3).permutation(len(doc_ids))
    rows = np.vstack([corpus[order], _unit(1, 99)])
    np.save(where / "corpus.npy", rows, allow_pickle=False)
    (where / "corpus_ids.txt").write_text("".join(f"{doc_ids[i]}\n" for i in order) + "extra\n")
    vector = pa.FixedSizeListArray.from_arrays(pa.array(queries.reshape(-1)), DIM)
    pq.write_table(
        pa.table({"id": _ids(beir, "queries.jsonl"), "vector": vector}), where / "queries.parquet"
    )


def _study(tmp_path, beir, vectors, **model):
    path = write_tiny_study(tmp_path / "s.yaml", beir, tmp_path)
    study = load_study(str(path)).model_dump(mode="json", exclude_defaults=True)
    study["models"] = {"vectors": {"dim": DIM, "vectors": str(vectors), **model}}
    study["tiers"]["tier1"]["models"] = ["vectors"]
    path.write_text(json.dumps(study))
    return gh.build(path, tmp_path / "data")


def _embed(defs):
    return defs.resolve_job_def(jobs.LEVEL_JOBS["pair"][0]).execute_in_process(
        partition_key=PAIR,
        asset_selection=[dg.AssetKey("corpus_embeddings"), dg.AssetKey("query_embeddings")],
        raise_on_error=False,
    )


def _failure_text(result) -> str:
    return "\n".join(
        str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure
    )


@pytest.fixture
def imported(tmp_path, tiny_beir):
    n_docs, n_queries = len(_ids(tiny_beir, "corpus.jsonl")), len(_ids(tiny_beir, "queries.jsonl"))
    corpus, queries = _unit(n_docs, 0), _unit(n_queries, 1)
    _write(tmp_path / "vectors", tiny_beir, corpus, queries)
    study, defs = _study(tmp_path, tiny_beir, tmp_path / "vectors")
    assert gh.materialize(defs, "dataset", "tiny").success
    result = _embed(defs)
    assert result.success, _failure_text(result)
    return tmp_path, defs, result, corpus, queries


def test_vectors_are_the_embeddings_in_the_collections_order(imported, tiny_beir):
    tmp_path, defs, result, corpus, queries = imported
    data = tmp_path / "data"
    stored = np.load(data / "corpus_embeddings" / f"{PAIR}.npy", allow_pickle=False)
    order = [int(i[1:]) for i in _ids(tiny_beir, "corpus.jsonl")]  # d{i} is row i of `corpus`
    np.testing.assert_array_equal(stored, corpus[order])
    # Only judged queries are in the collection: their rows, in the collection's order.
    collection = pq.read_table(data / "queries" / "tiny.parquet").column("query_id").to_pylist()
    stored_q = np.load(data / "query_embeddings" / f"{PAIR}.npy", allow_pickle=False)
    np.testing.assert_array_equal(stored_q, queries[[int(q[1:]) for q in collection]])
    meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("embeddings")
    }
    corpus_meta = meta["corpus_embeddings"]
    assert corpus_meta["encoder"].value == "precomputed"
    assert corpus_meta["extra_ids_ignored"].value == 1
    assert corpus_meta["vectors_sha256"].value == storage.sha256_file(
        tmp_path / "vectors" / "tiny" / "corpus.npy"
    )
    assert meta["query_embeddings"]["vectors_file"].value.endswith("queries.parquet")
    assert meta["query_embeddings"]["extra_ids_ignored"].value == 12 - len(collection)
    checks = {
        (c.asset_key.to_user_string(), c.check_name): c.passed
        for c in result.get_asset_check_evaluations()
    }
    assert checks and all(checks.values())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "1 id(s) of the collection have no vector, e.g. 'd7'"),
        ("duplicate", "corpus_ids.txt: duplicate id 'd7'"),
        ("dim", "the model's dim is 32"),
        ("nan", "corpus.npy: id 'd7' (row 0) has a NaN or Inf value"),
        ("norm", "corpus.npy: id 'd7' (row 0) has L2 norm 2"),
    ],
)
def test_a_bad_vector_file_fails_by_name_and_keeps_the_earlier_embeddings(
    imported, damage, message
):
    tmp_path, defs, *_ = imported
    where = tmp_path / "vectors" / "tiny"
    rows = np.load(where / "corpus.npy", allow_pickle=False)
    ids = (where / "corpus_ids.txt").read_text().splitlines()
    row = ids.index("d7")
    rows[[0, row]], ids[0], ids[row] = rows[[row, 0]], "d7", ids[0]  # d7 first
    if damage == "missing":
        rows, ids = rows[1:], ids[1:]
    elif damage == "duplicate":
        ids[1] = "d7"
    elif damage == "dim":
        rows = rows[:, :16]
    elif damage == "nan":
        rows[0, 5] = np.nan
    elif damage == "norm":
        rows[0] *= 2
    np.save(where / "corpus.npy", rows, allow_pickle=False)
    (where / "corpus_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    stored = tmp_path / "data" / "corpus_embeddings" / f"{PAIR}.npy"
    before = stored.read_bytes()

    result = _embed(defs)
    assert not result.success
    text = _failure_text(result)
    assert message in text and f"corpus_embeddings [{PAIR}], model 'vectors'" in text
    assert stored.read_bytes() == before
    assert not list((tmp_path / "data" / ".staging").glob("*corpus_embeddings-*"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("not_utf8", "corpus_ids.txt: line 2 is not UTF-8 (byte 0xff at column 1)"),
        ("empty", "corpus.npy: the file is empty (0 bytes), not a .npy array"),
        ("npz", "corpus.npy: a .npz archive (a zip of arrays: corpus), not one .npy array"),
        ("bom", "corpus_ids.txt: line 1: id '\\ufeff"),
        ("spaces", "has whitespace around it"),
    ],
)
def test_an_unreadable_vector_file_is_named_and_leaves_no_staging_file(imported, damage, message):
    """Before: UnicodeDecodeError, EOFError and AttributeError naming no file, a zero-filled
    array left in data/.staging/, and a BOM or spaces reported only as an id with no vector."""
    tmp_path, defs, *_ = imported
    where = tmp_path / "vectors" / "tiny"
    ids_file, npy = where / "corpus_ids.txt", where / "corpus.npy"
    if damage == "not_utf8":
        lines = ids_file.read_bytes().split(b"\n")
        ids_file.write_bytes(b"\n".join([lines[0], b"\xff" + lines[1], *lines[2:]]))
    elif damage == "empty":
        npy.write_bytes(b"")
    elif damage == "npz":
        np.savez(where / "c.npz", corpus=np.load(npy))
        (where / "c.npz").replace(npy)
    elif damage == "bom":
        ids_file.write_text("\ufeff" + ids_file.read_text())
    elif damage == "spaces":
        ids_file.write_text("".join(f" {i}\n" for i in ids_file.read_text().splitlines()))
    stored = tmp_path / "data" / "corpus_embeddings" / f"{PAIR}.npy"
    before = stored.read_bytes()

    result = _embed(defs)
    assert not result.success
    text = _failure_text(result)
    assert message in text and f"corpus_embeddings [{PAIR}], model 'vectors'" in text
    assert "Nothing was written" in text
    assert stored.read_bytes() == before
    assert list((tmp_path / "data" / ".staging").glob("*.npy")) == []


def test_a_failed_query_import_leaves_neither_staged_array_behind(imported):
    """The corpus imports, then the queries fail: the step stores nothing (all or nothing), so
    the corpus array staged first must not stay in data/.staging either."""
    tmp_path, defs, *_ = imported
    (tmp_path / "vectors" / "tiny" / "queries.parquet").write_bytes(b"not parquet")
    stored = tmp_path / "data" / "query_embeddings" / f"{PAIR}.npy"
    before = stored.read_bytes()
    result = _embed(defs)
    assert not result.success
    text = _failure_text(result)
    assert f"query_embeddings [{PAIR}], model 'vectors'" in text
    assert "queries.parquet: not a readable Parquet file" in text
    assert stored.read_bytes() == before
    assert list((tmp_path / "data" / ".staging").glob("*.npy")) == []


def test_normalize_rescales_and_says_so(tmp_path, tiny_beir):
    n_docs, n_queries = len(_ids(tiny_beir, "corpus.jsonl")), len(_ids(tiny_beir, "queries.jsonl"))
    corpus = _unit(n_docs, 0) * 3.0
    _write(tmp_path / "vectors", tiny_beir, corpus, _unit(n_queries, 1))
    study, defs = _study(tmp_path, tiny_beir, tmp_path / "vectors", normalize=True)
    assert gh.materialize(defs, "dataset", "tiny").success
    result = _embed(defs)
    assert result.success, _failure_text(result)
    stored = np.load(tmp_path / "data" / "corpus_embeddings" / f"{PAIR}.npy", allow_pickle=False)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-6)
    (meta,) = [
        m.metadata
        for m in result.asset_materializations_for_node("embeddings")
        if m.asset_key == dg.AssetKey("corpus_embeddings")
    ]
    assert meta["normalize"].value is True and meta["rows_normalized"].value == n_docs


def test_encoder_settings_on_a_vectors_model_are_a_config_error(tmp_path, tiny_beir):
    with pytest.raises(StudyConfigError, match="query_prompt configure an encoder"):
        _study(tmp_path, tiny_beir, tmp_path, query_prompt="query: ")


def test_the_readmes_worked_example_runs_as_written(tmp_path, tiny_beir):
    import yaml

    namespace: dict = {}
    exec(compile(doc_block("extending.md", "docs-vectors"), "docs/extending.md", "exec"), namespace)

    def embed(texts):  # a stand-in encoder: a hash of the text, not unit-norm on purpose
        seeds = [abs(hash(t)) % 2**32 for t in texts]
        return np.stack([np.random.default_rng(s).standard_normal(DIM) * 3 for s in seeds])

    namespace["write_vectors"](tiny_beir, tmp_path / "my-encoder" / "tiny", embed)
    (model,) = yaml.safe_load(doc_block("extending.md", "docs-vectors-yaml", "yaml"))[
        "models"
    ].values()
    assert set(model) == {"name", "dim", "vectors"}
    study, defs = _study(tmp_path, tiny_beir, tmp_path / "my-encoder", name=model["name"])
    assert gh.materialize(defs, "dataset", "tiny").success
    result = _embed(defs)
    assert result.success, _failure_text(result)
    stored = np.load(tmp_path / "data" / "corpus_embeddings" / f"{PAIR}.npy", allow_pickle=False)
    assert stored.shape == (len(_ids(tiny_beir, "corpus.jsonl")), DIM)
    (meta,) = [
        m.metadata
        for m in result.asset_materializations_for_node("embeddings")
        if m.asset_key == dg.AssetKey("corpus_embeddings")
    ]
    assert meta["model"].value == "my-company/encoder-v3"
