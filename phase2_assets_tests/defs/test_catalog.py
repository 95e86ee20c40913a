"""What the Dagster UI shows a researcher: groups in the plan's order, and no asset, check or job
without a description, a kind and its experiment."""

from __future__ import annotations

import dagster as dg
import pytest

from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions
from phase2_assets.defs.groups import EXPERIMENT_TAG, GROUP_ORDER, PLAN, place_in_plan


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return build_definitions(load_study("study"), str(tmp_path_factory.mktemp("data")))


def _specs(defs):
    return {k.to_user_string(): a.specs_by_key[k] for a in defs.assets for k in a.keys}


def test_groups_mirror_the_plan(defs):
    specs = _specs(defs)
    assert set(specs) == set(PLAN)
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
    assert {"collection_job", "embedding_job", "codes_job", "adapter_job", "results_job"} <= set(
        jobs
    )
    for name, job in jobs.items():
        assert job.description, name


def test_an_asset_missing_from_the_plan_fails_the_build():
    @dg.asset
    def stray():
        return 1

    with pytest.raises(KeyError, match="'stray' has no place in the plan"):
        place_in_plan([stray])
