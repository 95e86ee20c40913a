"""E2 and E3: the index of every stored method (``methods.store``), one asset each.

By default the instrument's codes (``binary_codes``), PQ (``pq_index``) and int8 (``int8_index``);
any registered method that declares how it is kept can be listed. One factory makes them all; the
method says what its index is called, how it is kept, what it records and which checks it runs.
"""

import time

import dagster as dg
import numpy as np

from phase2_assets.compute.data import storage
from phase2_assets.compute.methods import METHODS, Check, Method
from phase2_assets.config import Study
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.execution.pools import MEMORY_HEAVY
from phase2_assets.defs.graph.groups import CORE, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions, partitioned_check, split_pair_bits
from phase2_assets.defs.steps.all_or_nothing import all_or_nothing
from phase2_assets.defs.steps.progress import with_progress
from phase2_assets.defs.steps.provenance import check_metadata, provenance
from phase2_assets.defs.steps.settings import plan_of, settings_of

FORMATS = {"npy": ("npy_io_manager", "numpy"), "faiss": ("faiss_io_manager", "faiss")}


def stored_methods(study: Study) -> list[Method]:
    return [METHODS[name] for name in study.methods.store]


def check_spec(asset: str, check: Check, partitions) -> dg.AssetCheckSpec:
    """A partitioned asset's check is partitioned alike, so each result names its partition."""
    return partitioned_check(
        check.name,
        asset=asset,
        partitions=partitions,
        blocking=check.blocking,
        description=check.description,
    )


def check_result(context, name: str, outcome, check: Check) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if check.warn_only else dg.AssetCheckSeverity.ERROR,
        metadata=check_metadata(context, outcome.metadata),
    )


def partition_of(method: Method, key: str) -> tuple[str, int | None]:
    """(pair, bits) of a stored method's partition key; bits is None for reference methods."""
    return split_pair_bits(key) if method.budget == "bits" else (key, None)


def training_metadata(report) -> dict:
    return {
        "n_train": report.n_train,
        "recommended_min_train": report.recommended_min_train,
        "train_seconds": round(report.train_seconds, 3),
        "add_seconds": round(report.add_seconds, 3),
        "reconstruction_mse": report.reconstruction_mse,
        "relative_reconstruction_error": report.relative_error,
        **({"training_warning": report.warning} if report.warning else {}),
    }


def index_metadata(method: Method, built, dim: int, bits: int | None, seconds: float, settings):
    memory = method.memory(dim, bits)
    per_vector = memory.bytes_per_vector
    meta = {
        **({"bits": bits} if bits is not None else {}),
        "bytes_per_vector": int(per_vector) if float(per_vector).is_integer() else per_vector,
        "ntotal": built.ntotal,
        "seconds": round(seconds, 3),
        "vectors_per_second": round(built.ntotal / seconds, 1) if seconds > 0 else None,
    }
    if isinstance(built.index, np.ndarray):
        meta.update(
            shape=str(built.index.shape),
            total_code_bytes=int(built.index.nbytes),
            array_sha256=storage.sha256_array(built.index),
        )
    if built.training is not None:
        meta.update(training_metadata(built.training))
    return {**meta, **method.index_metadata(built, bits, settings)}


def build_index(context: dg.AssetExecutionContext, study: Study, method: Method, corpus):
    """Build the method's index from the corpus vectors, record it and run its checks; skipped
    (nothing materialised) where the tiers do not plan the method at this partition."""
    settings = settings_of(study)
    pair, bits = partition_of(method, context.partition_key)
    where = f"{method.name} [{pair}{f', {bits} bits' if bits else ''}]"
    if not method.applies(corpus.shape[1], bits, plan_of(study, pair)):
        context.log.info(f"{where} is not planned; skipped")
        return
    reason = method.requirement(len(corpus), corpus.shape[1], bits, settings)
    if reason is not None:
        context.log.warning(f"{where} skipped: {reason}")
        yield dg.AssetObservation(
            asset_key=context.asset_key,
            partition=context.partition_key,
            metadata={"skipped": reason},
        )
        for check in method.stored.index_checks:  # a check of an index never built: a warning
            yield dg.AssetCheckResult(
                check_name=check.name,
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata=check_metadata(context, {"skipped": reason}),
            )
        return
    t0 = time.perf_counter()
    built = method.build(
        corpus, bits, with_progress(settings, context, f"{where} encoding the corpus")
    )
    seconds = time.perf_counter() - t0
    context.log.info(f"{where}: built in {seconds:.1f}s ({built.ntotal:,} vectors)")
    if built.training is not None and built.training.warning:
        context.log.info(f"{where}: {built.training.warning}")
    seeds = {name: getattr(settings, field) for name, field in method.stored.seeds}
    yield dg.Output(
        built.index,
        output_name=method.stored.asset,
        metadata={
            **provenance(study, **seeds),
            **index_metadata(method, built, corpus.shape[1], bits, seconds, settings),
        },
    )
    outcomes = method.check_index(built, corpus, bits, settings)
    for check in method.stored.index_checks:
        yield check_result(context, check.name, outcomes[check.name], check)


def index_asset(study: Study, parts: StudyPartitions, method: Method) -> dg.AssetsDefinition:
    """One stored method's index. A multi-asset of one asset that can be subset: where the tiers
    do not plan the method at a partition (a tier of ``bits: [64, 512]`` and ``pq_bytes: [8]``
    plans PQ at 64 bits only), the step yields neither the index nor its checks, which Dagster
    then reports as skipped; a plain ``@dg.asset`` must yield every declared check."""
    spec = method.stored
    io_manager, kind = FORMATS[spec.format]
    partitions = parts.pair_bits if method.budget == "bits" else parts.pair

    @dg.multi_asset(
        name=spec.asset,
        outs={
            spec.asset: dg.AssetOut(
                **in_plan(CORE, spec.experiments[0]),
                io_manager_key=io_manager,
                kinds={kind},
                is_required=False,
                description=spec.description.format(**vars(settings_of(study))),
            )
        },
        partitions_def=partitions,
        pool=MEMORY_HEAVY if spec.memory_heavy else None,
        ins={"corpus_embeddings": dg.AssetIn()},
        check_specs=[check_spec(spec.asset, c, partitions) for c in spec.index_checks],
        can_subset=True,  # so that a partition the tiers do not plan yields no check result
    )
    @all_or_nothing  # a failed blocking check (the instrument's codes) stores no index
    @with_cpu_share
    def _index(context: dg.AssetExecutionContext, corpus_embeddings):
        yield from selected_only(context, build_index(context, study, method, corpus_embeddings))

    return _index


def selected_only(context: dg.AssetExecutionContext, events):
    """The events of the outputs and checks this run selected (a subsettable asset may be asked
    for its checks alone, or for the index without them)."""
    assets, checks = context.selected_asset_keys, context.selected_asset_check_keys
    for event in events:
        if isinstance(event, dg.Output) and context.asset_key not in assets:
            continue
        if isinstance(event, dg.AssetCheckResult):
            key = dg.AssetCheckKey(context.asset_key, event.check_name)
            if key not in checks:
                continue
        yield event


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    return [index_asset(study, parts, method) for method in stored_methods(study)]
