"""Tiers as partition sets, and the string form of (bits, pair) keys that Dagster's CLI uses."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from phase2_assets.cli import main
from phase2_assets.config import load_study
from phase2_assets.config.plan import partition_keys
from phase2_assets.defs.partitions import split_pair_bits


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
