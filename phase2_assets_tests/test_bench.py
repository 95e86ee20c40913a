"""The benchmark harness itself (not its timings): targets are judged right, and the Dagster
study and the bare faiss/numpy baseline compute the same numbers on the same synthetic partition."""

from __future__ import annotations

import numpy as np
import pytest

from bench import synthetic
from bench.__main__ import _phase, target


@pytest.mark.parametrize(
    ("measured", "goal", "verdict"),
    [(1.29, "<=1.3", "PASS"), (1.31, "<=1.3", "FAIL"), (0.96, ">=0.95", "PASS")]
    + [(0.94, ">=0.95", "FAIL"), (1.0, ">=1.0", "PASS")],
)
def test_target_lines(measured, goal, verdict):
    line = target("x", measured, goal)
    assert line == f"TARGET x {measured:.3f} {goal} {verdict}"


def test_synthetic_vectors_are_unit_norm_deterministic_and_clustered(tmp_path):
    a = synthetic.write_vectors(
        tmp_path / "c.npy", tmp_path / "q.npy", n=3000, dim=32, n_queries=20
    )
    corpus = np.load(tmp_path / "c.npy")
    queries = np.load(tmp_path / "q.npy")
    assert corpus.shape == (3000, 32) and queries.shape == (20, 32)
    np.testing.assert_allclose(np.linalg.norm(corpus, axis=1), 1.0, atol=1e-5)
    # Each query is a noisy copy of its source passage: that passage is its nearest neighbour.
    assert ((queries @ corpus.T).argmax(axis=1) == a).mean() >= 0.9
    b = synthetic.write_vectors(
        tmp_path / "c2.npy", tmp_path / "q2.npy", n=3000, dim=32, n_queries=20
    )
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.load(tmp_path / "c2.npy"), corpus)


@pytest.mark.slow  # a whole study and its bare baseline, about 20 s
def test_study_and_bare_baseline_agree(tmp_path):
    prepared = _phase("prepare", str(tmp_path), "4000", "64", "40")
    bare = _phase("bare", str(tmp_path))
    study = _phase("study", str(tmp_path))
    assert prepared["n"] == 4000
    ours, theirs = study["recall_at_10"], bare["recall_at_10"]
    assert set(ours) == set(theirs) and len(ours) == 10
    assert ours["float32@2048"] == theirs["float32@2048"] == 1.0
    for bits in (64, 128, 256, 512):  # same seed, same codes: the same recall
        assert ours[f"binary@{bits}"] == pytest.approx(theirs[f"binary@{bits}"], abs=0.01)
    assert ours["int8@512"] > 0.9 and theirs["int8@512"] > 0.9
    assert study["seconds"] > 0 and study["peak_rss_bytes"] > 0


def test_method_tables_are_printed_from_the_results_table():
    import polars as pl

    from bench.method_tables import tables

    rows = [
        ("float32", 128 * 32, 1.0, 0.7),
        ("binary", 64, 0.2, 0.25),
        ("pq", 64, 0.4, 0.35),
        ("sign", 128, 0.5, 0.55),
    ]
    table = pl.DataFrame(
        [
            {
                "dataset": "d",
                "model": "m",
                "method": m,
                "bits": b,
                "recall_at_10": r,
                "ndcg_at_10": n,
            }
            for m, b, r, n in rows
        ]
    )
    text = tables(table)
    assert "| 64 | 0.200 / 0.250 | 0.400 / 0.350 |" in text
    assert "| sign | 128 | 0.500 / 0.550 | sentence-transformers" in text
    assert "d × m" in text and "commit" in text


def test_method_tables_take_each_peer_from_its_method_class(monkeypatch):
    """No list of peers beside the methods: the class's own ``peer``, and "none" for a method
    that is not registered (a results table written before it was removed)."""
    from bench import method_tables
    from phase2_assets.compute.methods import METHODS

    monkeypatch.setattr(type(METHODS["pq"]), "peer", "someone's PQ")
    assert method_tables.peer("pq") == "someone's PQ"
    assert method_tables.peer("no_such_method") == "none"
    assert not hasattr(method_tables, "PEERS")


@pytest.mark.slow  # every method on a synthetic corpus, about 20 s
def test_every_method_bench_sets_each_method_against_pq_at_its_bytes(tmp_path):
    from bench import methods

    measured = methods.compare(
        tmp_path, 3000, 64, 30, log=lambda _: None, names=["binary", "int8", "itq"]
    )
    rows = {(r["method"], r["bits"]): r for r in measured["rows"]}
    assert {m for m, _ in rows} == {"float32", "pq", "binary", "int8", "itq"}
    assert all(rows[("pq", b)]["time_ratio"] == 1.0 for b in (64, 128, 256, 512))
    assert rows[("float32", 2048)]["recall_at_10"] == 1.0
    assert rows[("int8", 512)]["pq_bytes"] == 64  # 64 bytes: PQ's largest size not above it
    assert rows[("binary", 128)]["pq_bytes"] == 16
    assert ("itq", 64) in rows and ("itq", 128) not in rows  # ITQ needs bits <= dim
    assert all(r["peak_rss_bytes"] > 0 and r["search_seconds"] > 0 for r in rows.values())
    projected = methods.projection(measured)
    assert set(projected["hours_by_method"]) == {"float32", "pq", "binary", "int8", "itq"}
    assert projected["hours"] == pytest.approx(sum(projected["hours_by_method"].values()))
    assert ("opq", 256) in projected["not_measured"]
    table = methods.markdown(measured, projected)
    assert "| itq | 64 |" in table and "| pq | 64, 128, 256, 512 |" in table
