"""What the Dagster UI shows a researcher: groups in the plan's order, and no asset, check or job
without a description, a kind and its experiment."""

from __future__ import annotations

import dagster as dg
import pytest

from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions
from phase2_assets.defs.graph.groups import EXPERIMENT_TAG, GROUP_ORDER, check_placed

# The plan's reading of every asset (docs/plan.md): group in the lineage view, experiment id.
EXPECTED = {
    "corpus": ("core", "E1"),
    "queries": ("core", "E1"),
    "qrels": ("core", "E1"),
    "corpus_embeddings": ("core", "E1"),
    "query_embeddings": ("core", "E1"),
    "binary_codes": ("core", "E2"),
    "int8_index": ("core", "E3"),
    "pq_index": ("core", "E3"),
    "float_ground_truth": ("core", "E4"),
    "evaluation_qrels": ("core", "E4"),
    "reference_metrics": ("core", "E4-E6"),
    "int8_metrics": ("core", "E4-E6"),
    "binary_metrics": ("core", "E5"),
    "pq_metrics": ("core", "E6"),
    "method_metrics": ("core", "E5-E6"),
    "results/retrieval_metrics": ("core", "E5-E6"),
    "corpus_size_ladder": ("analysis", "E5-E6"),
    "results/corpus_ladder": ("analysis", "E5-E6"),
    "embedding_geometry": ("analysis", "E7"),
    "code_geometry": ("analysis", "E7"),
    "results/geometry": ("analysis", "E7"),
    "results/regression": ("analysis", "E8"),
    "results/bfi": ("analysis", "X1-X2"),
    "adapter_metrics": ("exploratory", "X3"),
    "results/adapter": ("exploratory", "X3"),
    "results/design_memo": ("exploratory", "X4"),
    "results/budget_ledger": ("report", "budget"),
    "results/kill_switches": ("report", "F1-F3-K1-K3"),
    "results/target_bands": ("report", "E1-E8-X1-X4"),
    "results/verdict": ("report", "verdict"),
    "results/report": ("report", "report"),
}


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return build_definitions(load_study("study"), str(tmp_path_factory.mktemp("data")))


def _specs(defs):
    return {k.to_user_string(): a.specs_by_key[k] for a in defs.assets for k in a.keys}


def test_groups_mirror_the_plan(defs):
    specs = _specs(defs)
    got = {key: (s.group_name, s.tags[EXPERIMENT_TAG]) for key, s in specs.items()}
    assert got == EXPECTED
    assert {s.group_name for s in specs.values()} == set(GROUP_ORDER)
    assert specs["binary_codes"].group_name == "core"
    assert specs["results/regression"].group_name == "analysis"
    assert specs["adapter_metrics"].group_name == "exploratory"
    assert specs["results/verdict"].group_name == "report"
    assert specs["pq_metrics"].tags[EXPERIMENT_TAG] == "E6"


def test_every_asset_has_a_description_a_kind_and_its_experiment(defs):
    for key, spec in _specs(defs).items():
        assert spec.description and len(spec.description) > 60, key
        assert spec.kinds, key
        assert spec.tags.get(EXPERIMENT_TAG), key


def test_every_check_says_what_it_guards(defs):
    checks = [spec for a in defs.assets for spec in a.check_specs]
    assert len(checks) >= 20
    for spec in checks:
        assert spec.description and len(spec.description) > 40, spec.key


def test_every_job_is_described(defs):
    jobs = {job.name: job for job in defs.jobs}
    assert {"dataset_job", "pair_job", "bits_job", "adapter_job", "results_job"} <= set(jobs)
    for name, job in jobs.items():
        assert job.description, name


def test_an_asset_missing_from_the_plan_fails_the_build():
    @dg.asset
    def stray():
        return 1

    with pytest.raises(KeyError, match="'stray' has no place in the plan"):
        check_placed([stray])


def test_each_job_runs_the_assets_of_its_partition_level(defs):
    """Jobs are derived from the assets' partitions; this is what each one runs."""
    runs = {
        job.name: {
            k.to_user_string()
            for k in defs.resolve_job_def(job.name).asset_layer.selected_asset_keys
        }
        for job in defs.jobs
    }
    assert runs == {
        "dataset_job": {"corpus", "queries", "qrels"},
        "pair_job": {
            "corpus_embeddings",
            "query_embeddings",
            "float_ground_truth",
            "evaluation_qrels",
            "int8_index",
            "int8_metrics",
            "reference_metrics",
            "embedding_geometry",
            "corpus_size_ladder",
        },
        "bits_job": {
            "binary_codes",
            "pq_index",
            "binary_metrics",
            "pq_metrics",
            "method_metrics",
            "code_geometry",
        },
        "adapter_job": {"adapter_metrics"},
        "results_job": {
            f"results/{name}"
            for name in (
                "retrieval_metrics",
                "corpus_ladder",
                "geometry",
                "bfi",
                "regression",
                "adapter",
                "budget_ledger",
                "kill_switches",
                "target_bands",
                "verdict",
                "design_memo",
                "report",
            )
        },
    }
