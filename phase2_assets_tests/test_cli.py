"""`phase2 run` through a real Dagster instance: results, recorded runs, bit-identical reruns."""

from __future__ import annotations

import hashlib

import polars as pl
from dagster import DagsterInstance

from phase2_assets.cli import main
from phase2_assets_tests.conftest import write_tiny_study


def _digests(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.npy"))
    }


def test_run_twice_gives_identical_codes_and_table(
    tmp_path, tiny_beir, tiny_model, monkeypatch, capsys
):
    study = write_tiny_study(tmp_path / "tiny.yaml", tiny_beir, tiny_model)
    outputs = []
    for attempt in ("a", "b"):
        home = tmp_path / attempt / "dagster_home"
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        assert main(["run", str(study), "--data-dir", str(tmp_path / attempt)]) == 0
        outputs.append(tmp_path / attempt)

        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            # dataset, pair, 4 bit lengths, results; then the X3 adapter and results again
            assert len(runs) == 1 + 1 + 4 + 1 + 1 + 1
            assert all(r.is_success for r in runs)

    a, b = outputs
    codes_a, codes_b = _digests(a / "binary_codes"), _digests(b / "binary_codes")
    assert len(codes_a) == 4 and codes_a == codes_b
    assert _digests(a / "corpus_embeddings") == _digests(b / "corpus_embeddings")
    table_a = pl.read_parquet(a / "results" / "retrieval_metrics.parquet")
    table_b = pl.read_parquet(b / "results" / "retrieval_metrics.parquet")
    core = table_a.filter(pl.col("method").is_in(["float32", "int8", "binary", "pq"]))
    assert core.height == 10 and table_a.height > 10  # plus the methods beyond the plan
    assert table_a.equals(table_b)
    adapter_a = pl.read_parquet(a / "results" / "adapter.parquet")
    adapter_b = pl.read_parquet(b / "results" / "adapter.parquet")
    assert adapter_a.height == 2 and adapter_a.equals(adapter_b)  # 128 and 256 bits, same weights
    assert (a / "results" / "design_memo.md").exists()
    assert "results:" in capsys.readouterr().out


def test_bad_config_exits_2_with_the_file_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnot_a_key: 1\n")
    assert main(["run", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "bad.yaml" in capsys.readouterr().err
