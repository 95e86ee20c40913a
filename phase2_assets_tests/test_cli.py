"""`phase2 run` through a real Dagster instance: results, recorded runs, bit-identical reruns."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest
from dagster import DagsterInstance

from phase2_assets.cli import main
from phase2_assets.testing.tiny import write_tiny_study


def _digests(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.npy"))
    }


@pytest.mark.slow  # three `phase2 run`s of the tiny study
@pytest.mark.static_images  # the PNGs are among the files compared byte for byte
def test_run_twice_on_other_thread_counts_gives_identical_files(
    tmp_path, tiny_beir, tiny_model, monkeypatch, capsys
):
    study = write_tiny_study(tmp_path / "tiny.yaml", tiny_beir, tiny_model)
    outputs = []
    for attempt in ("a", "b"):
        home = tmp_path / attempt / "dagster_home"
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        if attempt == "b":  # the second run on one thread: the thread count changes no byte
            monkeypatch.setenv("OMP_NUM_THREADS", "1")
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
    # Every file the study writes under results/ (tables, JSON, report, memo, figures, PNGs).
    results_a, results_b = _every_file(a / "results"), _every_file(b / "results")
    assert len(results_a) > 15 and results_a.keys() == results_b.keys()
    differ = sorted(name for name in results_a if results_a[name] != results_b[name])
    # The one exception by design: the ledger's measured hours (wall and CPU time of this run).
    assert differ == ["budget_ledger.parquet"], differ
    ledger_a = pl.read_parquet(a / "results" / "budget_ledger.parquet")
    ledger_b = pl.read_parquet(b / "results" / "budget_ledger.parquet")
    measured = ["gpu_hours", "cpu_hours", "spent_gpu_hours", "spent_cpu_hours", "budget_used"]
    assert ledger_a.drop(measured).equals(ledger_b.drop(measured))

    # The same study again on the same folder: the ledger counts the materialisations behind the
    # results (not every one ever made), so the memo and the report do not change either.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a" / "dagster_home"))
    assert main(["run", str(study), "--data-dir", str(a)]) == 0
    again = _every_file(a / "results")
    assert again.keys() == results_a.keys()
    assert sorted(n for n in again if again[n] != results_a[n]) in ([], ["budget_ledger.parquet"])
    ledger_again = pl.read_parquet(a / "results" / "budget_ledger.parquet")
    assert ledger_again.drop(measured).equals(ledger_a.drop(measured))

    # `phase2 report` with another study on this folder is refused, naming both, and changes
    # nothing (before: the default study emptied adapter.parquet and rewrote the verdict);
    # without a config it rebuilds with the folder's own study.
    capsys.readouterr()
    assert main(["report", "demo", "--data-dir", str(a)]) == 2
    err = capsys.readouterr().err
    assert "holds study 'tiny'" in err and "not study 'demo'" in err and "study.json" in err
    assert _every_file(a / "results") == again
    assert main(["report", "--data-dir", str(a)]) == 0
    rebuilt = _every_file(a / "results")
    assert sorted(n for n in rebuilt if rebuilt[n] != again[n]) in ([], ["budget_ledger.parquet"])


def _every_file(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_bad_config_exits_2_with_the_file_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnot_a_key: 1\n")
    assert main(["run", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "bad.yaml" in capsys.readouterr().err


@pytest.mark.slow  # three `phase2 run`s
def test_a_failed_level_stops_the_run_with_its_root_error_and_nothing_after_it(
    tmp_path, tiny_beir, tiny_model, monkeypatch, capsys
):
    """A BOM in corpus.jsonl on a folder that already holds good results: the collection run
    fails, no later run starts (they would read the previous corpus), the one root error is
    printed with its file and line, the exit is non-zero and no summary or verdict is printed.
    Before: embedding, codes, results and X3 ran "ok" on the old corpus and rewrote the report."""
    import shutil

    beir = tmp_path / "beir"
    shutil.copytree(tiny_beir, beir)
    study = write_tiny_study(tmp_path / "tiny.yaml", beir, tiny_model)
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    data = tmp_path / "data"
    assert main(["run", str(study), "--data-dir", str(data)]) == 0
    report = (data / "results" / "report.html").read_bytes()
    capsys.readouterr()

    corpus = beir / "corpus.jsonl"
    corpus.write_bytes(b"\xef\xbb\xbf" + corpus.read_bytes())
    assert main(["run", str(study), "--data-dir", str(data)]) == 1
    out, err = capsys.readouterr()
    assert "dataset_job[tiny]: FAILURE" in out
    assert "pair_job" not in out and "results:" not in out and "verdict" not in out.lower()
    assert f"{corpus}:1: malformed JSON (Unexpected UTF-8 BOM" in err
    assert "stopped at dataset_job[tiny]" in err
    assert err.count("Traceback") == 0
    assert (data / "results" / "report.html").read_bytes() == report  # not rewritten
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()  # newest first
        assert not runs[0].is_success and runs[0].job_name == "dataset_job"
        assert all(r.is_success for r in runs[1:])

    # Another study in the same process starts with the same job name as the one that failed:
    # Dagster's cache of the last reconstructed job must not hand it the previous study's graph
    # (before the fix: KeyError 'other' in beir_collection).
    other = write_tiny_study(
        tmp_path / "other.yaml",
        tiny_beir,
        tiny_model,
        datasets={"other": {"path": str(tiny_beir), "split": "test"}},
        tiers={"t": {"datasets": ["other"], "models": ["tiny-bert"], "bits": [8], "pq_bytes": [1]}},
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "other_home"))
    assert main(["run", str(other), "--data-dir", str(tmp_path / "other_data")]) == 0
