"""E1: float32 unit-norm embeddings of passages and queries, streamed to .npy in chunks:
encoded with sentence-transformers, or imported from a model's precomputed vectors."""

import platform
import time

import dagster as dg
import numpy as np

from phase2_assets.compute.analysis import sanity
from phase2_assets.compute.data import beir, encoders, resumable, storage, vectors
from phase2_assets.config import Study, split_pair
from phase2_assets.defs.execution import pools
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.graph.groups import CORE, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions, partitioned_check
from phase2_assets.defs.steps.all_or_nothing import all_or_nothing
from phase2_assets.defs.steps.progress import both, log_progress, terminal_bar
from phase2_assets.defs.steps.provenance import check_metadata, provenance
from phase2_assets.defs.steps.runtime import StudyRuntime
from phase2_assets.defs.storage.gates import assert_expansion_open
from phase2_assets.defs.storage.io_managers import StagedArray, staging_path

NORM_CHECK = (
    "Every vector is finite and has L2 norm 1 within the configured tolerance. Cosine similarity "
    "is computed as an inner product everywhere downstream, which is only right on unit vectors; "
    "a NaN or a zero vector would silently corrupt every ranking. Blocking."
)
SHAPE_CHECK = "One row per {what} and the model's configured dimension: no text was dropped."


def _norm_spec(asset: str, partitions) -> dg.AssetCheckSpec:
    return partitioned_check(
        "finite_unit_norm",
        asset=asset,
        partitions=partitions,
        blocking=True,
        description=NORM_CHECK,
    )


def _shape_spec(asset: str, what: str, partitions) -> dg.AssetCheckSpec:
    return partitioned_check(
        "expected_shape",
        asset=asset,
        partitions=partitions,
        blocking=True,
        description=SHAPE_CHECK.format(what=what),
    )


def _batch_size(context, model, cfg, device: str, texts) -> tuple[int, dict[int, float]]:
    """CPU: the configured size. CUDA: the configured GPU size, or one measured on the card."""
    if not device.startswith("cuda"):
        return cfg.batch_size, {}
    if cfg.gpu_batch_size:
        return cfg.gpu_batch_size, {}
    import torch

    size, tried = encoders.tune_batch_size(
        model, texts, start=cfg.batch_size, out_of_memory=(torch.cuda.OutOfMemoryError,)
    )
    torch.cuda.empty_cache()
    rates = ", ".join(f"{b}: {r:.0f}/s" for b, r in tried.items())
    context.log.info(f"GPU batch size {size} (texts/s by batch size: {rates})")
    return size, tried


def device_metadata(device: str, precision: str, batch_size: int, tuning: dict) -> dict:
    """What ran the encoder: the budget ledger sums these seconds per device kind."""
    meta = {"device": device, "precision": precision, "batch_size": batch_size}
    if device.startswith("cuda"):
        import torch

        meta["device_name"] = torch.cuda.get_device_name(torch.device(device))
    else:
        meta["device_name"] = platform.processor() or platform.machine()
    if tuning:
        meta["batch_size_tuning"] = {str(b): round(r, 1) for b, r in tuning.items()}
    return meta


def embed_pair(context, study: Study, runtime: StudyRuntime, corpus, queries):
    """E1 for one pair: encode the texts, or import the model's precomputed vectors."""
    pair = context.partition_key
    if study.is_expansion_pair(pair):
        assert_expansion_open(runtime.storage_root, f"embedding {pair}")
    cfg = study.models[split_pair(pair)[1]]
    produce = import_pair if cfg.precomputed else encode_pair
    for output, tmp, rows, metadata in produce(context, study, runtime, corpus, queries):
        yield from _checked(context, study, output, tmp, rows, cfg.dim, metadata)


def _checked(context, study: Study, output: str, tmp, rows: int, dim: int, metadata: dict):
    """The blocking checks on a staged array, then the output (only if both pass)."""
    pair = context.partition_key
    out = np.load(tmp, mmap_mode="r", allow_pickle=False)
    norm = sanity.unit_vectors(out, study.checks.norm_tolerance)
    shape = sanity.expected_shape(out, rows, dim)
    checksum = storage.sha256_array(out)
    del out
    checks = [
        dg.AssetCheckResult(
            asset_key=output,
            check_name=name,
            passed=outcome.passed,
            metadata=check_metadata(context, outcome.metadata),
        )
        for name, outcome in (("finite_unit_norm", norm), ("expected_shape", shape))
    ]
    if not (norm.passed and shape.passed):
        context.log.error(
            f"{output} [{pair}] failed its blocking checks (see the check results): not "
            f"materialised, so the previous file, if any, stays in place; the rejected "
            f"array is left at {tmp} for inspection"
        )
        yield from checks
        return
    yield dg.Output(
        StagedArray(tmp),
        output_name=output,
        metadata={
            **provenance(study),
            **metadata,
            "shape": str((rows, dim)),
            "dagster/row_count": rows,
            "array_sha256": checksum,
        },
    )
    yield from checks


def encode_pair(context, study: Study, runtime: StudyRuntime, corpus, queries):
    """Encode one pair's passages and queries with sentence-transformers (resumable, chunk by
    chunk, progress in the run log); yields each staged array with its metadata."""
    pair = context.partition_key
    _, model_key = split_pair(pair)
    cfg = study.models[model_key]
    source = encoders.resolve_model(model_key, cfg.name, cfg.path, runtime.model_dir)
    device = encoders.pick_device(runtime.device)
    precision = encoders.pick_precision(cfg.precision, device)
    backend = encoders.pick_backend(cfg.backend)
    context.log.info(
        f"Loading {cfg.name} from {source.location} ({source.kind}) on {device}, "
        f"{backend} {precision}"
    )
    model = encoders.load_encoder(
        source,
        device=device,
        max_seq_length=cfg.max_seq_length,
        trust_remote_code=encoders.remote_code_allowed(
            model_key, cfg.trust_remote_code, runtime.trusted_remote_code
        ),
        precision=precision,
        backend=backend,
    )
    jobs = {
        "corpus_embeddings": beir.passage_texts(corpus, cfg.passage_prompt),
        "query_embeddings": [cfg.query_prompt + t for t in queries["text"].to_list()],
    }
    batch_size, tuning = _batch_size(context, model, cfg, device, jobs["corpus_embeddings"])
    common = {**device_metadata(device, precision, batch_size, tuning), "backend": backend}
    for output, texts in jobs.items():
        tmp = _staging(runtime, study, output, pair)
        what = f"{output} [{pair}]"
        progress = both(log_progress(context, what, "texts"), terminal_bar(what))
        t0, cpu0 = time.perf_counter(), time.process_time()
        out, reused = resumable.encode_resumable(
            model,
            texts,
            tmp,
            dim=cfg.dim,
            batch_size=batch_size,
            chunk=study.retrieval.encode_chunk,
            model_id=(
                f"{source.kind}:{source.location}:{model.max_seq_length}:{precision}"
                + ("" if backend == "torch" else f":{backend}")
            ),
            progress=progress,
            renormalise=precision == "fp16",
        )
        del out
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
        if reused:
            context.log.info(f"{output} [{pair}]: resumed after {reused} complete chunks")
        encoded = len(texts) - min(reused * study.retrieval.encode_chunk, len(texts))
        # The journal goes either way: a rerun must encode again, not reuse bad chunks.
        resumable.clear_journal(tmp)
        yield (
            output,
            tmp,
            len(texts),
            {
                **common,
                "encoder": "sentence-transformers",
                "model": cfg.name,
                "model_source": f"{source.kind}: {source.location}",
                "seconds": round(seconds, 3),
                "docs_per_second": round(encoded / seconds, 2) if seconds > 0 else None,
                "chunks_resumed": reused,
                "device_seconds": round(seconds, 3),
                "gpu_seconds": round(seconds, 3) if device.startswith("cuda") else 0.0,
                "cpu_seconds": round(cpu_seconds, 3),
                "max_seq_length": int(model.max_seq_length or 0),
                "prompt": cfg.passage_prompt if output == "corpus_embeddings" else cfg.query_prompt,
            },
        )


def _staging(runtime: StudyRuntime, study: Study, output: str, pair: str):
    """The local array a pair's vectors are written into before the IO manager stores them:
    named by study too, since one worker's scratch folder serves every study of a deployment."""
    return staging_path(runtime.data_dir, f"{study.name}-{output}-{pair}")


IMPORTS = {  # output: (role of the vector files, the collection's frame and its id column)
    "corpus_embeddings": ("corpus", "doc_id"),
    "query_embeddings": ("queries", "query_id"),
}


def import_pair(context, study: Study, runtime: StudyRuntime, corpus, queries):
    """Read one pair's precomputed vectors, matched to the collection's ids and checked row by
    row (``vectors.import_vectors``); yields each staged array with where it came from. A
    failure leaves nothing in ``.staging``: neither its own half (zero-filled) array nor an
    earlier role's, which the step's all-or-nothing outputs never stored."""
    pair = context.partition_key
    frames = {"corpus": corpus, "queries": queries}
    staged = []
    try:
        for output, (role, id_column) in IMPORTS.items():
            tmp = _staging(runtime, study, output, pair)
            staged.append(tmp)
            ids = frames[role][id_column].to_list()
            yield output, tmp, len(ids), _import_role(context, study, output, role, ids, tmp)
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):  # closed early by its reader: not a failure
            for path in staged:
                path.unlink(missing_ok=True)
        raise


def _import_role(context, study: Study, output: str, role: str, ids: list, tmp) -> dict:
    """One role's vectors imported into the staged array ``tmp``; its metadata."""
    pair = context.partition_key
    dataset, model_key = split_pair(pair)
    cfg = study.models[model_key]
    what = f"{output} [{pair}]"
    t0 = time.perf_counter()
    try:
        source = vectors.find_source(cfg.vectors, dataset, role)
        context.log.info(f"{what}: importing precomputed vectors from {source.vectors}")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(ids), cfg.dim))
        report = vectors.import_vectors(
            source,
            ids,
            out,
            normalize=cfg.normalize,
            tolerance=study.checks.norm_tolerance,
            chunk=study.retrieval.encode_chunk,
            progress=both(log_progress(context, what, "vectors"), terminal_bar(what)),
        )
        out.flush()
        del out
    except vectors.VectorFileError as exc:
        raise vectors.VectorFileError(
            f"{what}, model {model_key!r}: {exc}. Nothing was written; earlier results "
            f"stay as they were."
        ) from exc
    if report.extra_ids:
        context.log.info(f"{what}: {report.extra_ids} ids not in the collection, ignored")
    if report.normalized_rows:
        context.log.warning(
            f"{what}: normalize: true L2-normalised {report.normalized_rows} rows that "
            f"were not unit-norm"
        )
    return {
        "encoder": "precomputed",
        "model": cfg.label,
        "vectors_file": str(source.vectors),
        "vectors_sha256": storage.sha256_file(source.vectors),
        **(
            {"ids_file": str(source.ids), "ids_sha256": storage.sha256_file(source.ids)}
            if source.ids
            else {}
        ),
        "source_dtype": report.dtype,
        "source_rows": report.source_rows,
        "extra_ids_ignored": report.extra_ids,
        "normalize": cfg.normalize,
        "rows_normalized": report.normalized_rows,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    dataset_in = {"partition_mapping": parts.pair_to_dataset}

    @dg.multi_asset(
        name="embeddings",
        partitions_def=parts.pair,
        ins={
            "corpus": dg.AssetIn(**dataset_in),
            "queries": dg.AssetIn(**dataset_in),
        },
        outs={
            "corpus_embeddings": dg.AssetOut(
                **in_plan(CORE, "E1"),
                io_manager_key="npy_io_manager",
                is_required=False,  # not materialised when its blocking checks fail
                kinds={"torch", "numpy"},
                description=(
                    "Passage embeddings (n_docs x dim, float32, L2-normalised) from the model's "
                    "passage prompt + 'title text', or the model's precomputed vectors matched "
                    "to the corpus ids (metadata `encoder`). Memory-mappable .npy; row i is "
                    "corpus row i."
                ),
            ),
            "query_embeddings": dg.AssetOut(
                **in_plan(CORE, "E1"),
                io_manager_key="npy_io_manager",
                is_required=False,  # not materialised when its blocking checks fail
                kinds={"torch", "numpy"},
                description=(
                    "Query embeddings (n_queries x dim) with the model's query prompt, or its "
                    "precomputed query vectors matched to the query ids."
                ),
            ),
        },
        check_specs=[
            _norm_spec("corpus_embeddings", parts.pair),
            _shape_spec("corpus_embeddings", "passage", parts.pair),
            _norm_spec("query_embeddings", parts.pair),
            _shape_spec("query_embeddings", "query", parts.pair),
        ],
        pool=pools.EMBEDDING,
        op_tags=pools.step_tags(pools.EMBEDDING),
    )
    @all_or_nothing
    @with_cpu_share
    def embeddings(context: dg.AssetExecutionContext, runtime: StudyRuntime, corpus, queries):
        """Encode with sentence-transformers (progress in the run log every chunk), or import
        the model's precomputed vectors."""
        yield from embed_pair(context, study, runtime, corpus, queries)

    return [embeddings]
