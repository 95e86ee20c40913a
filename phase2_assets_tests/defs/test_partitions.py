"""Tiers as partition sets, and the string form of (bits, pair) keys that Dagster's CLI uses."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from phase2_assets.cli import main
from phase2_assets.config import load_study
from phase2_assets.config.plan import partition_keys
from phase2_assets.defs.graph.partitions import split_pair_bits


def test_each_tier_is_its_own_partition_set():
    study = load_study("study")
    assert partition_keys(study, "dataset", "tier2") == ["msmarco", "scifact"]
    assert partition_keys(study, "pair", "tier2") == ["msmarco__bge-large", "scifact__bge-large"]
    tier2 = partition_keys(study, "bits", "tier2")
    assert tier2 == [
        f"{b}|{p}" for p in ("msmarco__bge-large", "scifact__bge-large") for b in (128, 256, 512)
    ]  # the reduced sweep: no 64 bits for bge-large
    assert len(partition_keys(study, "bits", "tier1")) == 6 * 4
    assert len(partition_keys(study, "bits")) == 6 * 4 + 6
    assert partition_keys(study, "adapter") == study.adapter_pairs()


def test_unknown_tier_or_level_is_refused():
    study = load_study("demo")
    with pytest.raises(ValueError, match="tier 'tier9' is not in study 'demo'"):
        partition_keys(study, "bits", "tier9")
    with pytest.raises(ValueError, match="level 'codes'"):
        partition_keys(study, "codes")


def test_phase2_partitions_prints_what_dagster_job_backfill_takes(capsys):
    assert main(["partitions", "--study", "demo", "--tier", "demo", "--level", "bits"]) == 0
    printed = capsys.readouterr().out.strip()
    assert (
        printed == "64|scifact__minilm,128|scifact__minilm,256|scifact__minilm,512|scifact__minilm"
    )
    assert main(["partitions", "--study", "demo", "--tier", "nope", "--level", "pair"]) == 2


def test_a_bits_pair_key_reads_the_same_as_its_string_form():
    key = dg.MultiPartitionKey({"pair": "scifact__minilm", "bits": "256"})
    assert str(key) == "256|scifact__minilm"
    assert (
        split_pair_bits(key) == split_pair_bits("256|scifact__minilm") == ("scifact__minilm", 256)
    )
    with pytest.raises(ValueError, match=re.escape("like '256|scifact__minilm'")):
        split_pair_bits("scifact__minilm")


def _tier(bits, pq_bytes, model="tiny-bert"):
    return {"datasets": ["tiny"], "models": [model], "bits": bits, "pq_bytes": pq_bytes}


def _materialised(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


@pytest.mark.slow  # a whole study for each
@pytest.mark.parametrize(
    ("bits", "pq_bytes"),
    [([8, 32], [1]), ([8], [1, 4])],  # the study schema allows both: no PQ at 32, no binary at 32
    ids=["binary-beyond-pq", "pq-beyond-binary"],
)
def test_a_tier_whose_bits_and_pq_sizes_differ_runs_every_partition_it_plans(
    tmp_path, tiny_beir, tiny_model, bits, pq_bytes
):
    import polars as pl

    from phase2_assets.config import plan
    from phase2_assets.testing import graph as gh
    from phase2_assets.testing.tiny import write_tiny_study

    path = write_tiny_study(
        tmp_path / "t.yaml", tiny_beir, tiny_model, tiers={"tier1": _tier(bits, pq_bytes)}
    )
    study, defs = gh.build(path, tmp_path / "data")
    assert plan.partition_keys(study, "bits") == ["8|tiny__tiny-bert", "32|tiny__tiny-bert"]
    results = gh.materialize_study(study, defs)
    failed = [e.message for r in results for e in r.all_events if e.is_step_failure]
    assert failed == [] and all(r.success for r in results)
    at_32 = next(
        r
        for r in results
        if r.dagster_run.tags.get("dagster/partition", "") == "32|tiny__tiny-bert"
    )
    made = _materialised(at_32)
    # The planned method is materialised with its checks; the unplanned one is skipped whole.
    planned, unplanned = (
        ("binary_codes", "pq_index") if 32 in bits else ("pq_index", "binary_codes")
    )
    assert planned in made and unplanned not in made
    checked = {k.split(":")[0] for k in gh.check_evaluations(at_32)}
    assert planned in checked and unplanned not in checked
    table = pl.read_parquet(tmp_path / "data" / "results" / "retrieval_metrics.parquet")
    got = set(zip(table["method"], table["bits"], strict=True))
    want = {("binary", b) for b in bits} | {("pq", 8 * m) for m in pq_bytes}
    assert want <= got
    assert ("pq" if 32 in bits else "binary", 32) not in got


def test_a_bits_partition_no_tier_plans_is_skipped_with_its_checks(tmp_path, tiny_beir, tiny_model):
    """bge-large at 64 bits in the study's Tier 2, in small: the partition exists (the bits
    dimension is every tier's), the pair is embedded, and nothing is planned there."""
    import polars as pl

    from phase2_assets.config import plan
    from phase2_assets.testing import graph as gh
    from phase2_assets.testing.tiny import write_tiny_study

    models = {
        "tiny-bert": {"name": "tests/tiny-bert", "path": str(tiny_model), "dim": 32},
        "tiny-bert-b": {"name": "tests/tiny-bert", "path": str(tiny_model), "dim": 32},
    }
    tiers = {"tier1": _tier([8], [1]), "tier2": _tier([32], [4], model="tiny-bert-b")}
    path = write_tiny_study(tmp_path / "t.yaml", tiny_beir, tiny_model, models=models, tiers=tiers)
    study, defs = gh.build(path, tmp_path / "data")
    unplanned = plan.bits_key("tiny__tiny-bert-b", 8)
    assert unplanned not in plan.partition_keys(study, "bits")
    assert gh.materialize(defs, "dataset", "tiny").success
    assert gh.materialize(defs, "pair", "tiny__tiny-bert-b").success
    result = gh.materialize(defs, "bits", unplanned)
    assert result.success
    # No index, no metrics row and no check; method_metrics (no stored index) writes its empty
    # table, as it does wherever no method beyond the plan applies.
    assert _materialised(result) <= {"method_metrics"}
    assert gh.check_evaluations(result) == {}
    extra = tmp_path / "data" / "method_metrics" / "tiny__tiny-bert-b" / "8.parquet"
    assert not extra.exists() or pl.read_parquet(extra).is_empty()
