"""The study config as the compute layer reads it: the methods' ``Settings`` and a pair's plan.

Every ``Settings`` field is read from the study here, and the schema's defaults for those keys
are ``Settings``' own (``config/study.py``), so no default is written twice.
"""

from phase2_assets.compute.analysis.bfi import BFIFormula
from phase2_assets.compute.methods import Plan, Settings
from phase2_assets.config import Study


def settings_of(study: Study) -> Settings:
    return Settings(
        projection_seed=study.seeds.projection,
        pq_seed=study.seeds.pq_train,
        pq_nbits=study.pq.nbits,
        pq_train_size=study.pq.train_size,
        query_block=study.retrieval.query_block,
        corpus_block=study.retrieval.corpus_block,
        method_params=study.methods.params(),
        check_thresholds=study.checks.model_dump(),
        checks_seed=study.seeds.checks,
    )


def plan_of(study: Study, pair: str) -> Plan:
    """What the tiers ask for on one (dataset, model) pair."""
    bits, pq_bytes = study.plan(pair)
    return Plan(frozenset(bits), frozenset(pq_bytes))


def bfi_formula(study: Study) -> BFIFormula:
    return BFIFormula(**study.bfi.model_dump())
