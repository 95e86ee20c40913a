"""The target bands in the graph: the asset, its checks, the report's first section, the memo,
and the corpus size on every claim."""

from __future__ import annotations

import json

import dagster as dg

from phase2_assets.compute.analysis import bands
from phase2_assets.defs.graph.partitions import partitioned_check
from phase2_assets.defs.steps import check_history
from phase2_assets.testing import graph as gh


def _bands(tiny_study_run) -> dict[str, dict]:
    value = json.loads((tiny_study_run.data_dir / "results" / "target_bands.json").read_text())
    return {b["experiment"]: b for b in value["bands"]}


def test_every_experiment_has_a_band_or_its_reason(tiny_study_run):
    found = _bands(tiny_study_run)
    assert list(found) == list(bands.EXPERIMENTS)
    for b in found.values():
        assert b["band"] in bands.BANDS
        assert (b["band"] == bands.NOT_JUDGED) == bool(b["why_not"]), b
    # One (dataset, model) pair: no spread, no variation, no regression to judge.
    assert found["X1"]["band"] == found["E7"]["band"] == bands.NOT_JUDGED
    assert "at least 2" in found["X1"]["why_not"]
    # E2 and E4 are read from the checks in the instance: every code and ground-truth check ran.
    assert found["E2"]["band"] != bands.NOT_JUDGED
    assert found["E2"]["numbers"]["partitions_checked"] == 4
    assert found["E4"]["band"] == bands.HOPE and found["E4"]["numbers"]["checks_failed"] == 0
    assert found["E1"]["band"] == bands.HOPE  # CPU only: 0 GPU-hours, every pair embedded


def test_claims_carry_their_corpus_size(tiny_study_run):
    found = _bands(tiny_study_run)
    judged = [b for b in found.values() if b["band"] != bands.NOT_JUDGED]
    assert judged and all(b["scale"] == "on collections of 300 passages only" for b in judged)
    results = tiny_study_run.data_dir / "results"
    verdict = json.loads((results / "verdict.json").read_text())
    assert any(
        r.startswith("judged on collections of 300 passages only") for r in verdict["reasons"]
    )
    assert verdict["numbers"]["small_scale"] is True
    switches = json.loads((results / "kill_switches.json").read_text())["switches"]
    f2 = next(s for s in switches if s["name"] == "F2")
    assert f2["state"] != "not evaluated"
    assert f2["numbers"]["judged_on"] == "on collections of 300 passages only"
    assert all("judged_on" not in s["numbers"] for s in switches if not s["evaluated"])
    memo = (results / "design_memo.md").read_text()
    assert "## What the study found" in memo
    assert "passages only: below the plan's ~500K-passage scale" in memo


def test_the_report_opens_with_what_the_study_found(tiny_study_run):
    html = (tiny_study_run.data_dir / "results" / "report.html").read_text()
    assert html.index("What the study found") < html.index("<h2>Verdict</h2>")
    assert "binary recall_at_10" in html or "recall_at_10" in html


def test_one_warning_check_per_judged_band(tiny_study_run):
    evaluations = {}
    for run in tiny_study_run.runs:
        evaluations.update(gh.check_evaluations(run))
    found = _bands(tiny_study_run)
    for e, b in found.items():
        key = f"results/target_bands:{e}"
        if b["band"] == bands.NOT_JUDGED:
            assert key not in evaluations
            continue
        ev = evaluations[key]
        assert ev.severity == dg.AssetCheckSeverity.WARN
        assert ev.passed == (b["band"] != bands.NEGATIVE)
        assert ev.metadata["band"].value == b["band"]


def _asset_with_check():
    parts = dg.StaticPartitionsDefinition(["p0", "p1"])

    @dg.asset(
        name="codes",
        partitions_def=parts,
        check_specs=[partitioned_check("ok", asset="codes", partitions=parts)],
    )
    def codes(context):
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="ok", passed=context.partition_key == "p0")

    return codes


def test_check_history_keeps_the_newest_result_of_this_study_only():
    codes = _asset_with_check()
    with dg.instance_for_test() as instance:
        for key, tags in [("p0", {}), ("p1", {"phase2/study": "other"})]:
            dg.materialize([codes], partition_key=key, instance=instance, tags=tags)
        got = check_history.latest_checks(instance, "codes", ["ok"], "mine")
        assert got.to_dicts() == [{"check": "ok", "partition": "p0", "passed": True}]
        dg.materialize(
            [codes], partition_key="p1", instance=instance, tags={"phase2/study": "mine"}
        )
        got = check_history.latest_checks(instance, "codes", ["ok"], "mine")
        assert got["partition"].to_list() == ["p0", "p1"]
        assert got["passed"].to_list() == [True, False]
