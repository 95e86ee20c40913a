"""E5 and E6: every method scored against the float ground truth and the qrels, one row each."""

import time

import dagster as dg
import polars as pl

from phase2_assets.compute import evaluation, report, sanity
from phase2_assets.compute.methods import METHODS, Built, methods_for
from phase2_assets.compute.metrics import ndcg_at_k
from phase2_assets.config import Study, plan, split_pair
from phase2_assets.defs.assets.codes import planned_methods, settings_of
from phase2_assets.defs.cpu_share import with_cpu_share
from phase2_assets.defs.groups import CORE, in_plan
from phase2_assets.defs.partitions import StudyPartitions, split_pair_bits
from phase2_assets.defs.pools import MEMORY_HEAVY
from phase2_assets.defs.progress import with_progress
from phase2_assets.defs.provenance import check_metadata, provenance
from phase2_assets.defs.results_io import all_partitions, frames


def _summary(table: pl.DataFrame) -> dict:
    meta = {"dagster/row_count": table.height}
    if table.height:
        meta["preview"] = dg.MetadataValue.md(_markdown(table))
        for row in table.iter_rows(named=True):
            meta[f"{row['method']}_recall_at_10"] = round(row["recall_at_10"], 4)
            meta[f"{row['method']}_ndcg_at_10"] = round(row["ndcg_at_10"], 4)
    return meta


def _timings(rows: list[dict]) -> dict:
    """Search seconds and method diagnostics: metadata, never table columns."""
    meta = {f"{r['method']}_search_seconds": round(r["search_seconds"], 4) for r in rows}
    for r in rows:
        meta.update({k: round(float(v), 6) for k, v in r.get("diagnostics", {}).items()})
    return meta


PREVIEW_COLUMNS = [
    "method",
    "bits",
    "bytes_per_vector",
    "recall_at_10",
    "ndcg_at_10",
    "ndcg_at_10_vs_float",
]


def _markdown(table: pl.DataFrame) -> str:
    return report.markdown_table(table, PREVIEW_COLUMNS, digits=4)


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    settings = settings_of(study)

    @dg.asset(
        **in_plan(CORE, "E4-E6"),
        partitions_def=parts.pair,
        io_manager_key="parquet_io_manager",
        kinds={"faiss", "polars"},
        pool=MEMORY_HEAVY,
        description=(
            "Rows for the reference methods, whose size follows the model's dimension rather "
            "than a bit budget: float32 (the exact ranking itself: recall 1 by definition, its "
            "nDCG@10 is the model's task score), int8 (faiss SQ8) and every other registered "
            "reference method (built here from the corpus vectors)."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "int8_near_float",
                asset="reference_metrics",
                description="int8 keeps recall_at_10 >= 0.95 against float32: at 8 bits per "
                "dimension quantisation noise should barely move the ranking. Warning only.",
            )
        ],
    )
    @with_cpu_share
    def reference_metrics(
        context: dg.AssetExecutionContext,
        float_ground_truth,
        evaluation_qrels: pl.DataFrame,
        query_embeddings,
        int8_index,
        corpus_embeddings,
    ):
        pair = context.partition_key
        dataset, model = split_pair(pair)
        refs = evaluation.references(
            float_ground_truth, evaluation_qrels, len(query_embeddings), int8_index.ntotal
        )
        dim = query_embeddings.shape[1]
        rows = [
            evaluation.method_row(
                METHODS["float32"], refs.truth_ids, refs, dim=dim, bits=None, search_seconds=0.0
            ),
            evaluation.search_and_score(
                METHODS["int8"],
                Built(int8_index),
                query_embeddings,
                refs,
                bits=None,
                settings=with_progress(settings, context, f"int8 search [{pair}]"),
            ),
        ]
        rows += _built_here(
            context, "reference", None, pair, corpus_embeddings, query_embeddings, refs
        )
        table = evaluation.rows_to_table(rows, dataset, model)
        yield dg.Output(table, metadata={**provenance(study), **_summary(table), **_timings(rows)})
        int8_recall = float(table.filter(pl.col("method") == "int8")["recall_at_10"][0])
        yield dg.AssetCheckResult(
            check_name="int8_near_float",
            passed=int8_recall >= 0.95,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=check_metadata(context, {"int8_recall_at_10": int8_recall, "threshold": 0.95}),
        )

    def _built_here(context, budget, bits, pair, corpus, queries, refs) -> list[dict]:
        """Rows of the registered methods that have no asset of their own: build, then search."""
        planned = planned_methods(study, pair)
        rows = []
        for method in methods_for(budget):
            # The plan's own methods have assets of their own (E2-E6): built and scored there.
            if method.in_plan or not method.applies(corpus.shape[1], bits, planned):
                continue
            if study.methods.extra is not None and method.name not in study.methods.extra:
                continue
            step = with_progress(settings, context, f"{method.name} [{pair}, {bits or 'ref'}]")
            t0 = time.perf_counter()
            built = method.build(corpus, bits, step)
            build_seconds = time.perf_counter() - t0
            row = evaluation.search_and_score(
                method, built, queries, refs, bits=bits, settings=step
            )
            extra = method.diagnostics(built, queries, refs.truth_ids, settings)
            row["diagnostics"] = {f"{method.name}_{k}": v for k, v in extra.items()}
            context.log.info(
                f"{method.name} [{pair}, {bits or 'reference'}]: built in {build_seconds:.1f}s, "
                f"recall_at_10 {row['recall_at_10']:.4f}"
            )
            rows.append(row)
        return rows

    @dg.asset(
        **in_plan(CORE, "E5-E6"),
        partitions_def=parts.pair_bits,
        io_manager_key="parquet_io_manager",
        kinds={"faiss", "polars"},
        pool=MEMORY_HEAVY,
        description=(
            "Rows for every registered bit-budget method without an asset of its own (beyond "
            "the plan: binary + re-ranking, asymmetric scoring, centred sign, ITQ, OPQ, PCA + "
            "int8, ...), each built from the corpus vectors at this bit length and scored like "
            "the instrument. Empty when no such method applies."
        ),
    )
    @with_cpu_share
    def method_metrics(
        context: dg.AssetExecutionContext,
        corpus_embeddings,
        query_embeddings,
        float_ground_truth,
        evaluation_qrels: pl.DataFrame,
    ):
        pair, bits = split_pair_bits(context.partition_key)
        dataset, model = split_pair(pair)
        refs = evaluation.references(
            float_ground_truth, evaluation_qrels, len(query_embeddings), len(corpus_embeddings)
        )
        rows = _built_here(context, "bits", bits, pair, corpus_embeddings, query_embeddings, refs)
        table = evaluation.rows_to_table(rows, dataset, model)
        return dg.Output(table, metadata={**provenance(study), **_summary(table), **_timings(rows)})

    def _bits_metrics(
        name: str, experiment: str, method_name: str, index_asset: str, description: str, checks
    ):
        @dg.asset(
            **in_plan(CORE, experiment),
            name=name,
            partitions_def=parts.pair_bits,
            io_manager_key="parquet_io_manager",
            kinds={"polars"},
            ins={
                index_asset: dg.AssetIn(),
                "query_embeddings": dg.AssetIn(),
                "float_ground_truth": dg.AssetIn(),
                "evaluation_qrels": dg.AssetIn(),
            },
            description=description,
            check_specs=checks,
        )
        @with_cpu_share
        def _asset(context: dg.AssetExecutionContext, **inputs):
            pair, bits = split_pair_bits(context.partition_key)
            dataset, model = split_pair(pair)
            built = Built(inputs[index_asset])
            queries = inputs["query_embeddings"]
            n_docs = built.ntotal
            refs = evaluation.references(
                inputs["float_ground_truth"], inputs["evaluation_qrels"], len(queries), n_docs
            )
            step = with_progress(settings, context, f"{method_name} search [{pair}, {bits} bits]")
            row = evaluation.search_and_score(
                METHODS[method_name], built, queries, refs, bits=bits, settings=step
            )
            table = evaluation.rows_to_table([row], dataset, model)
            yield dg.Output(
                table, metadata={**provenance(study), **_summary(table), **_timings([row])}
            )
            if checks:
                float_ndcg = ndcg_at_k(refs.truth_ids, refs.qrels, 10)
                outcome = sanity.quantiser_within_bounds(
                    row["recall_at_10"],
                    n_docs,
                    row["ndcg_at_10"],
                    float_ndcg,
                    study.checks.pq_float_ndcg_slack,
                )
                yield dg.AssetCheckResult(
                    check_name=checks[0].name,
                    passed=outcome.passed,
                    metadata=check_metadata(context, outcome.metadata),
                )

        return _asset

    binary_metrics = _bits_metrics(
        "binary_metrics",
        "E5",
        "binary",
        "binary_codes",
        "Row for the instrument at this bit length: exact Hamming top-K (ties by corpus row) "
        "scored against the float ground truth and the qrels.",
        [],
    )
    pq_metrics = _bits_metrics(
        "pq_metrics",
        "E6",
        "pq",
        "pq_index",
        "Row for PQ at the same bytes per vector: faiss asymmetric-distance top-K scored like "
        "the binary codes.",
        [
            dg.AssetCheckSpec(
                "between_random_and_float",
                asset="pq_metrics",
                description="PQ recall_at_10 beats a random ranking (k / n_docs) and its task "
                "nDCG@10 is not above float32's by more than the configured slack: a PQ baseline "
                "outside these bounds is broken, not strong or weak.",
            )
        ],
    )

    @dg.asset(
        **in_plan(CORE, "E5-E6"),
        key=["results", "retrieval_metrics"],
        io_manager_key="parquet_io_manager",
        kinds={"polars", "parquet"},
        ins={
            name: all_partitions()
            for name in ("reference_metrics", "binary_metrics", "pq_metrics", "method_metrics")
        },
        description=(
            "The study's results table, data/results/retrieval_metrics.parquet: one row per "
            "(dataset, model, method, bits) for every partition materialised so far. Plots and "
            "reports are drawn from this table only."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "planned_rows_present",
                asset=["results", "retrieval_metrics"],
                description="Every (dataset, model, method, bits) the study config plans has a "
                "row. Missing rows mean partitions not yet materialised. Warning only.",
            )
        ],
    )
    @with_cpu_share
    def retrieval_metrics(context: dg.AssetExecutionContext, **tables):
        collected = [t for loaded in tables.values() for t in frames(loaded)]
        table = (
            # Partitions written by an older version may lack or carry extra columns.
            evaluation.conform(pl.concat(collected, how="diagonal_relaxed")).sort(
                "dataset", "model", "method", "bits"
            )
            if collected
            else pl.DataFrame(schema={c: pl.Float64 for c in evaluation.RESULT_COLUMNS})
        )
        yield dg.Output(
            table,
            metadata={
                **provenance(study),
                "dagster/row_count": table.height,
                "table": dg.MetadataValue.md(_markdown(table)) if table.height else "empty",
            },
        )
        planned = plan.planned_result_rows(study)
        have = set()
        if table.height:
            have = {
                (r[0], r[1], r[2], int(r[3]))
                for r in table.select("dataset", "model", "method", "bits").iter_rows()
            }
        missing = sorted(planned - have)
        yield dg.AssetCheckResult(
            check_name="planned_rows_present",
            passed=not missing,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "planned_rows": len(planned),
                "missing_rows": len(missing),
                "first_missing": ", ".join("/".join(map(str, m)) for m in missing[:10]) or "none",
            },
        )

    return [reference_metrics, method_metrics, binary_metrics, pq_metrics, retrieval_metrics]
