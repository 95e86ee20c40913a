"""E2 and E3: the instrument's binary codes and the faiss baselines (PQ, int8) at matched memory."""

import time

import dagster as dg

from phase2_assets.compute import instrument, sanity, storage
from phase2_assets.compute.methods import METHODS, Plan, Settings
from phase2_assets.config import Study
from phase2_assets.defs.cpu_share import with_cpu_share
from phase2_assets.defs.groups import CORE, in_plan
from phase2_assets.defs.partitions import StudyPartitions, split_pair_bits
from phase2_assets.defs.pools import MEMORY_HEAVY
from phase2_assets.defs.progress import with_progress
from phase2_assets.defs.provenance import check_metadata, provenance


def settings_of(study: Study) -> Settings:
    return Settings(
        projection_seed=study.seeds.projection,
        pq_seed=study.seeds.pq_train,
        pq_nbits=study.pq.nbits,
        pq_train_size=study.pq.train_size,
        query_block=study.retrieval.query_block,
        corpus_block=study.retrieval.corpus_block,
        method_params=study.methods.params(),
    )


def planned_methods(study: Study, pair: str) -> Plan:
    bits, pq_bytes = study.plan(pair)
    return Plan(frozenset(bits), frozenset(pq_bytes))


def _training_metadata(report) -> dict:
    return {
        "n_train": report.n_train,
        "recommended_min_train": report.recommended_min_train,
        "train_seconds": round(report.train_seconds, 3),
        "add_seconds": round(report.add_seconds, 3),
        "reconstruction_mse": report.reconstruction_mse,
        "relative_reconstruction_error": report.relative_error,
        **({"training_warning": report.warning} if report.warning else {}),
    }


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    settings = settings_of(study)
    checks = study.checks

    @dg.asset(
        **in_plan(CORE, "E2"),
        partitions_def=parts.pair_bits,
        io_manager_key="npy_io_manager",
        kinds={"numpy"},
        output_required=False,
        ins={"corpus_embeddings": dg.AssetIn()},
        description=(
            "The instrument's packed binary codes of the corpus (n_docs x bits/8 uint8): seeded "
            "Gaussian projection d -> bits, sign, packed little-endian. Skipped (not materialised) "
            "where the study's tiers do not ask for binary codes at this bit length."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "self_hamming_zero",
                asset="binary_codes",
                blocking=True,
                description="A sample of codes searched against the corpus finds distance 0 first "
                "(itself or an exact duplicate): the Hamming search and packing agree.",
            ),
            dg.AssetCheckSpec(
                "reproducible",
                asset="binary_codes",
                blocking=True,
                description="Re-encoding a sample with the recorded seed gives the stored bytes "
                "exactly: the codes are a deterministic function of (vectors, seed, bits).",
            ),
            dg.AssetCheckSpec(
                "bit_balance",
                asset="binary_codes",
                description="No bit is (nearly) constant: the fraction of ones of every bit is "
                "within the configured deviation from 0.5. Anisotropic embeddings skew bits; a "
                "constant bit wastes memory. Warning only.",
            ),
            dg.AssetCheckSpec(
                "hamming_tracks_angle",
                asset="binary_codes",
                description="SimHash theory: normalised Hamming distance estimates angle/pi. The "
                "mean error over random pairs must stay within the configured bound.",
            ),
        ],
    )
    @with_cpu_share
    def binary_codes(context: dg.AssetExecutionContext, corpus_embeddings):
        pair, bits = split_pair_bits(context.partition_key)
        method = METHODS["binary"]
        if not method.applies(corpus_embeddings.shape[1], bits, planned_methods(study, pair)):
            context.log.info(f"binary codes at {bits} bits are not planned for {pair}; skipped")
            return
        t0 = time.perf_counter()
        codes = method.build(corpus_embeddings, bits, settings).index
        seconds = time.perf_counter() - t0
        n = len(codes)
        yield dg.Output(
            codes,
            metadata={
                **provenance(study, projection=settings.projection_seed),
                "instrument_version": instrument.INSTRUMENT_VERSION,
                "bits": bits,
                "bytes_per_vector": bits // 8,
                "shape": str(codes.shape),
                "total_code_bytes": int(codes.nbytes),
                "array_sha256": storage.sha256_array(codes),
                "seconds": round(seconds, 3),
                "vectors_per_second": round(n / seconds, 1) if seconds > 0 else None,
            },
        )
        sample, seed = checks.sample_size, study.seeds.checks
        outcomes = {
            "self_hamming_zero": sanity.self_hamming_zero(codes, sample, seed),
            "reproducible": sanity.reproducible_codes(
                corpus_embeddings, codes, bits, settings.projection_seed, sample, seed
            ),
            "bit_balance": sanity.bit_balance(codes, bits, checks.bit_balance_max_deviation),
            "hamming_tracks_angle": sanity.hamming_matches_angle(
                corpus_embeddings, codes, bits, checks.hamming_angle_max_error, sample, seed
            ),
        }
        for name, outcome in outcomes.items():
            yield dg.AssetCheckResult(
                check_name=name,
                passed=outcome.passed,
                metadata=check_metadata(context, outcome.metadata),
                severity=dg.AssetCheckSeverity.WARN
                if name == "bit_balance"
                else dg.AssetCheckSeverity.ERROR,
            )

    @dg.asset(
        **in_plan(CORE, "E3"),
        partitions_def=parts.pair_bits,
        io_manager_key="faiss_io_manager",
        kinds={"faiss"},
        output_required=False,
        pool=MEMORY_HEAVY,
        ins={"corpus_embeddings": dg.AssetIn()},
        description=(
            "faiss product quantiser at the same memory as the binary code: M = bits/8 "
            f"sub-quantisers of {study.pq.nbits} bits, inner-product metric, trained on a seeded "
            f"sample of up to {study.pq.train_size} corpus vectors (seed pq_train). Skipped where "
            "the tiers do not ask for this PQ size."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "enough_training_data",
                asset="pq_index",
                description="faiss wants at least 39 x 256 training points per 8-bit "
                "sub-quantiser; fewer makes PQ an unfairly weak baseline. Warning only (small "
                "corpora such as SciFact train on every vector).",
            )
        ],
    )
    @with_cpu_share
    def pq_index(context: dg.AssetExecutionContext, corpus_embeddings):
        pair, bits = split_pair_bits(context.partition_key)
        method = METHODS["pq"]
        if not method.applies(corpus_embeddings.shape[1], bits, planned_methods(study, pair)):
            context.log.info(f"PQ{bits // 8} is not planned for {pair}; skipped")
            return
        n_train = min(settings.pq_train_size, len(corpus_embeddings))
        context.log.info(f"PQ{bits // 8} [{pair}]: training on {n_train:,} sampled vectors")
        step = with_progress(settings, context, f"PQ{bits // 8} [{pair}] encoding the corpus")
        built = method.build(corpus_embeddings, bits, step)
        index, report = built.index, built.training
        context.log.info(
            f"PQ{bits // 8} [{pair}]: trained in {report.train_seconds:.1f}s, "
            f"encoded {index.ntotal:,} vectors in {report.add_seconds:.1f}s"
        )
        yield dg.Output(
            index,
            metadata={
                **provenance(study, pq_train=settings.pq_seed),
                "M": bits // 8,
                "nbits": study.pq.nbits,
                "bytes_per_vector": bits // 8,
                "ntotal": int(index.ntotal),
                **_training_metadata(report),
            },
        )
        yield dg.AssetCheckResult(
            check_name="enough_training_data",
            passed=not report.undertrained,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=check_metadata(
                context,
                {
                    "n_train": report.n_train,
                    "recommended": report.recommended_min_train,
                    **({"warning": report.warning} if report.warning else {}),
                },
            ),
        )

    @dg.asset(
        **in_plan(CORE, "E3"),
        partitions_def=parts.pair,
        io_manager_key="faiss_io_manager",
        kinds={"faiss"},
        pool=MEMORY_HEAVY,
        description=(
            "faiss 8-bit scalar quantiser (SQ8): one byte per dimension with per-dimension "
            "min/max ranges from the whole corpus. The high-memory baseline (8·d bits)."
        ),
    )
    @with_cpu_share
    def int8_index(context: dg.AssetExecutionContext, corpus_embeddings):
        pair = context.partition_key
        step = with_progress(settings, context, f"int8 [{pair}] encoding the corpus")
        built = METHODS["int8"].build(corpus_embeddings, None, step)
        index, report = built.index, built.training
        return dg.Output(
            index,
            metadata={
                **provenance(study),
                "bytes_per_vector": corpus_embeddings.shape[1],
                "ntotal": int(index.ntotal),
                **_training_metadata(report),
            },
        )

    return [binary_codes, pq_index, int8_index]
