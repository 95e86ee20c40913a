"""The corpus-size ladder: recall at fixed bits on nested subsets of every corpus (issue 27)."""

import time

import dagster as dg
import polars as pl

from phase2_assets.compute.analysis import corpus_ladder
from phase2_assets.compute.methods import METHODS
from phase2_assets.compute.search import evaluation
from phase2_assets.config import Study, split_pair
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.execution.pools import MEMORY_HEAVY
from phase2_assets.defs.graph.groups import ANALYSIS, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions
from phase2_assets.defs.steps.provenance import provenance
from phase2_assets.defs.steps.runtime import StudyRuntime
from phase2_assets.defs.steps.settings import settings_of
from phase2_assets.defs.steps.study_tables import (
    all_partitions,
    attach_registered,
    frames,
    table_metadata,
)

TREND_COLUMNS = {
    "dataset": "BEIR collection",
    "model": "embedding model",
    "method": "retrieval method",
    "bits": "code bits per vector",
    "smallest_docs": "passages in the smallest rung",
    "largest_docs": "passages in the whole corpus",
    "recall_at_10_smallest": "recall_at_10 on the smallest rung",
    "recall_at_10_largest": "recall_at_10 on the whole corpus",
    "recall_change_per_tenfold": "least-squares change of recall_at_10 per tenfold passages",
}


def _methods(study: Study):
    return [(METHODS[name], bits) for name in study.ladder.methods for bits in study.ladder.bits]


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    cfg = study.ladder
    chosen = ", ".join(f"{m} @ {', '.join(map(str, cfg.bits))} bits" for m in cfg.methods)

    @dg.asset(
        **in_plan(ANALYSIS, "E5-E6"),
        partitions_def=parts.pair,
        io_manager_key="parquet_io_manager",
        kinds={"faiss", "polars"},
        pool=MEMORY_HEAVY,
        ins={
            "corpus_embeddings": dg.AssetIn(),
            "query_embeddings": dg.AssetIn(),
            "evaluation_qrels": dg.AssetIn(),
        },
        description=(
            f"How recall at fixed bits moves with corpus size on this (dataset, model): {chosen} "
            "built and scored on nested seeded subsets of the corpus (every judged passage kept; "
            f"rungs of {', '.join(f'{s:,}' for s in cfg.sizes)} passages below the corpus size, "
            "then the whole corpus), each against the exact float top-k of its own subset. The "
            "plan's thresholds are written for ~500K passages: this is the trend between the "
            "sizes at hand, not an extrapolation."
        ),
    )
    @with_cpu_share
    def corpus_size_ladder(
        context: dg.AssetExecutionContext, corpus_embeddings, query_embeddings, evaluation_qrels
    ):
        dataset, model = split_pair(context.partition_key)
        t0 = time.perf_counter()
        rows, skipped = corpus_ladder.ladder(
            corpus_embeddings,
            query_embeddings,
            evaluation.qrels_lists(evaluation_qrels, len(query_embeddings)),
            _methods(study),
            sizes=cfg.sizes,
            seed=study.seeds.checks,
            settings=settings_of(study),
            k=study.retrieval.ground_truth_k,
        )
        for (method, bits, docs), reason in skipped.items():
            context.log.warning(f"{method} @ {bits} bits on {docs:,} passages skipped: {reason}")
        table = corpus_ladder.table(rows, dataset, model)
        meta = {
            **provenance(study, checks=study.seeds.checks),
            "dagster/row_count": table.height,
            "rungs": sorted(set(table["corpus_docs"].to_list())),
            "ladder_seconds": round(time.perf_counter() - t0, 2),
            "skipped": dg.MetadataValue.md(
                "\n".join(
                    f"- {m} @ {b} bits, {d:,} passages: {why}" for (m, b, d), why in skipped.items()
                )
                or "none"
            ),
        }
        if table.height:
            meta["ladder"] = table_metadata(table, corpus_ladder.COLUMNS)
        return dg.Output(table, metadata=meta)

    @dg.asset(
        **in_plan(ANALYSIS, "E5-E6"),
        key=["results", "corpus_ladder"],
        io_manager_key="parquet_io_manager",
        kinds={"polars", "plotly"},
        ins={"corpus_size_ladder": all_partitions()},
        description=(
            "data/results/corpus_ladder.parquet: every pair's ladder (method, bits, passages, "
            "recall_at_10, nDCG@10), with each line's change of recall_at_10 per tenfold corpus "
            "in the metadata and the report's 'Recall against corpus size'."
        ),
    )
    @with_cpu_share
    def corpus_ladder_table(context: dg.AssetExecutionContext, runtime: StudyRuntime, **inputs):
        loaded = frames(inputs["corpus_size_ladder"])
        table = (
            pl.concat(loaded).sort("dataset", "model", "method", "bits", "corpus_docs")
            if loaded
            else corpus_ladder.table([], "", "").clear()
        )
        trend = corpus_ladder.trend(table)
        meta = {"dagster/row_count": table.height, **provenance(study)}
        if trend.height:
            meta["trend"] = table_metadata(trend, TREND_COLUMNS)
        meta.update(
            attach_registered(runtime.storage_root, context.asset_key, {"corpus_ladder": table})
        )
        return dg.Output(table, metadata=meta)

    return [corpus_size_ladder, corpus_ladder_table]
