"""E1 input: the BEIR collection of a dataset, subsampled deterministically."""

import hashlib
from pathlib import Path

import dagster as dg

from phase2_assets.compute.data import sources
from phase2_assets.config import Study
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.graph.groups import CORE, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions
from phase2_assets.defs.steps.all_or_nothing import all_or_nothing
from phase2_assets.defs.steps.provenance import provenance
from phase2_assets.defs.steps.runtime import StudyRuntime


def request_of(study: Study, runtime: StudyRuntime, name: str) -> sources.Request:
    """What the dataset sources are asked for one dataset of the study, on this machine."""
    cfg = study.datasets[name]
    return sources.Request(
        name=name,
        split=cfg.split,
        sample_size=cfg.sample_size,
        seed=study.seeds.corpus_sample,
        download_dir=Path(runtime.download_dir),
        allow_download=runtime.allow_download,
        path=cfg.path,
        beir_name=cfg.beir_name,
        url=cfg.url,
        checksum=cfg.checksum,
        beir_dir=runtime.beir_dir,
    )


def read_collection(context, study: Study, runtime: StudyRuntime):
    """Read the dataset through the first source that finds it (a BEIR folder, the BEIR
    download, or a format registered in ``compute/data/sources``), sampled."""
    name = context.partition_key
    cfg = study.datasets[name]
    request = request_of(study, runtime, name)
    source, folder = sources.locate(request)
    context.log.info(f"Reading {name} from {folder} (split {cfg.split})")
    coll = source.read(folder, request)
    skipped = coll.stats["qrels_unknown_doc_ids_skipped"]
    if skipped:
        context.log.warning(
            f"{name}: {skipped} qrels lines name doc ids missing from corpus.jsonl; skipped"
        )
    ids_sha = hashlib.sha256("\n".join(coll.corpus["doc_id"].to_list()).encode()).hexdigest()
    common = provenance(study, corpus_sample=study.seeds.corpus_sample)
    yield dg.Output(
        coll.corpus,
        output_name="corpus",
        metadata={
            **common,
            "source": dg.MetadataValue.path(str(folder)),
            "dagster/row_count": coll.corpus.height,
            "corpus_lines": coll.stats["corpus_lines"],
            "sampled": coll.stats["sampled"],
            "sample_size": cfg.sample_size or coll.stats["corpus_lines"],
            "kept_doc_ids_sha256": ids_sha,
            "empty_documents": coll.stats["empty_documents"],
        },
    )
    yield dg.Output(
        coll.queries,
        output_name="queries",
        metadata={**common, "dagster/row_count": coll.queries.height, "split": cfg.split},
    )
    yield dg.Output(
        coll.qrels,
        output_name="qrels",
        metadata={
            **common,
            "dagster/row_count": coll.qrels.height,
            "qrels_unknown_doc_ids_skipped": skipped,
            "split": cfg.split,
        },
    )


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="beir_collection",
        partitions_def=parts.dataset,
        outs={
            "corpus": dg.AssetOut(
                **in_plan(CORE, "E1"),
                io_manager_key="parquet_io_manager",
                kinds={"polars", "parquet"},
                description=(
                    "Passages of the dataset (doc_id, title, text). Large corpora are sampled with "
                    "a seeded draw that keeps every judged passage; the row order here is the row "
                    "order of every embedding, code and index downstream."
                ),
            ),
            "queries": dg.AssetOut(
                **in_plan(CORE, "E1"),
                io_manager_key="parquet_io_manager",
                kinds={"polars", "parquet"},
                description="Queries judged in the study split (query_id, text), in row order.",
            ),
            "qrels": dg.AssetOut(
                **in_plan(CORE, "E1"),
                io_manager_key="parquet_io_manager",
                kinds={"polars", "parquet"},
                description=(
                    "Positive relevance judgements (query_id, doc_id, score) whose passage is in "
                    "the corpus sample."
                ),
            ),
        },
    )
    @all_or_nothing
    @with_cpu_share
    def beir_collection(context: dg.AssetExecutionContext, runtime: StudyRuntime):
        """Read a BEIR-format folder (local, under PHASE2_BEIR_DIR, or downloaded)."""
        yield from read_collection(context, study, runtime)

    return [beir_collection]
