"""E4: exact float top-K neighbours (faiss inner product), and the judgements in row space."""

import time

import dagster as dg
import numpy as np
import polars as pl

from phase2_assets.compute.analysis import sanity
from phase2_assets.compute.search import evaluation, exact_search
from phase2_assets.config import Study
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.execution.pools import MEMORY_HEAVY
from phase2_assets.defs.graph.groups import CORE, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions, partitioned_check
from phase2_assets.defs.steps.all_or_nothing import all_or_nothing
from phase2_assets.defs.steps.progress import log_progress
from phase2_assets.defs.steps.provenance import check_metadata, provenance


def exact_top_k(context, study: Study, corpus_embeddings, query_embeddings):
    """The exact float top-K of every query, streamed over blocks, and its consistency check."""
    t0 = time.perf_counter()
    scores, ids = exact_search.float_topk(
        query_embeddings,
        corpus_embeddings,
        study.retrieval.ground_truth_k,
        query_block=study.retrieval.query_block,
        corpus_block=study.retrieval.corpus_block,
        progress=log_progress(context, f"exact search [{context.partition_key}]", "vectors"),
    )
    seconds = time.perf_counter() - t0
    outcome = sanity.ground_truth_consistent(
        query_embeddings,
        corpus_embeddings,
        ids,
        scores,
        study.checks.ground_truth_sample_queries,
        study.seeds.checks,
    )
    nq, n = len(query_embeddings), len(corpus_embeddings)
    yield dg.Output(
        {"ids": ids, "scores": scores},
        metadata={
            **provenance(study, checks=study.seeds.checks),
            "shape": str(ids.shape),
            "seconds": round(seconds, 3),
            "flops_estimate": float(2 * nq * n * corpus_embeddings.shape[1]),
            "mean_top1_cosine": float(scores[:, 0].mean()),
            "mean_top10_cosine": float(scores[:, : min(10, scores.shape[1])].mean()),
        },
    )
    yield dg.AssetCheckResult(
        check_name="self_consistent",
        passed=outcome.passed,
        metadata=check_metadata(context, outcome.metadata),
    )


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    @dg.asset(
        **in_plan(CORE, "E4"),
        partitions_def=parts.pair,
        io_manager_key="npz_io_manager",
        kinds={"numpy"},
        pool=MEMORY_HEAVY,
        output_required=False,  # withheld when its blocking check fails (all_or_nothing)
        description=(
            "Exact cosine top-K corpus rows per query (ids int64, scores float32; K = "
            f"{study.retrieval.ground_truth_k}) over query x corpus blocks, ties by lower corpus "
            "row: a float32 BLAS product screens, and every candidate within its error bound of "
            "the k-th is re-scored by the exact product, so the lists and scores are the same "
            "bits on every CPU and thread count. Every recall and the fidelity nDCG are measured "
            "against this."
        ),
        check_specs=[
            partitioned_check(
                "self_consistent",
                asset="float_ground_truth",
                blocking=True,
                description=(
                    "Scores are sorted, ids unique and in range, and stored scores equal the "
                    "exact dot products recomputed for a sample of queries (tolerance 1e-4; "
                    "they agree to the bit). Guards against a wrong metric, a dimension mix-up "
                    "or a broken merge of blocks. Blocking: a failure stores no ground truth."
                ),
                partitions=parts.pair,
            )
        ],
    )
    @all_or_nothing
    @with_cpu_share
    def float_ground_truth(context: dg.AssetExecutionContext, corpus_embeddings, query_embeddings):
        yield from exact_top_k(context, study, corpus_embeddings, query_embeddings)

    @dg.asset(
        **in_plan(CORE, "E4"),
        partitions_def=parts.pair,
        io_manager_key="parquet_io_manager",
        kinds={"polars"},
        ins={
            "corpus": dg.AssetIn(partition_mapping=parts.pair_to_dataset),
            "queries": dg.AssetIn(partition_mapping=parts.pair_to_dataset),
            "qrels": dg.AssetIn(partition_mapping=parts.pair_to_dataset),
        },
        description=(
            "The qrels re-keyed as (query_row, doc_row, score): the row order of the embeddings, "
            "so task nDCG needs no string ids in the evaluation loop."
        ),
    )
    @with_cpu_share
    def evaluation_qrels(
        context: dg.AssetExecutionContext,
        corpus: pl.DataFrame,
        queries: pl.DataFrame,
        qrels: pl.DataFrame,
    ):
        table = evaluation.judgements_by_row(
            corpus["doc_id"].to_list(), queries["query_id"].to_list(), qrels
        )
        per_query = table.group_by("query_row").len()["len"].to_numpy()
        return dg.Output(
            table,
            metadata={
                "dagster/row_count": table.height,
                "queries_with_judgements": int(len(per_query)),
                "mean_relevant_per_query": float(np.mean(per_query)) if len(per_query) else 0.0,
            },
        )

    return [float_ground_truth, evaluation_qrels]
