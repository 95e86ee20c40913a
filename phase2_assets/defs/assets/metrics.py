"""E4–E6: every method scored against the float ground truth and the qrels, one row each.

Every row comes from ``evaluation.search_and_score``. A stored method (``methods.store``) is
scored by its own metrics asset from its index asset; every other registered method is built and
scored in ``reference_metrics`` (reference budget) or ``method_metrics`` (bit budgets).
"""

import time

import dagster as dg
import polars as pl

from phase2_assets.compute.methods import METHODS, Built, Method, methods_for
from phase2_assets.compute.search import evaluation
from phase2_assets.config import Study, plan, split_pair
from phase2_assets.defs.assets.codes import check_result, check_spec, partition_of, stored_methods
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.execution.pools import MEMORY_HEAVY
from phase2_assets.defs.graph.groups import CORE, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions, split_pair_bits
from phase2_assets.defs.steps.progress import with_progress
from phase2_assets.defs.steps.provenance import provenance
from phase2_assets.defs.steps.runtime import StudyRuntime
from phase2_assets.defs.steps.settings import plan_of, settings_of
from phase2_assets.defs.steps.study_tables import (
    all_partitions,
    frames,
    side_table_path,
    table_metadata,
    write_side_table,
)
from phase2_assets.defs.storage import study_stamp
from phase2_assets.defs.storage.locations import Root

# What the UI's results tables show, and what each column is.
RESULT_COLUMNS_SHOWN = {
    "dataset": "BEIR collection",
    "model": "embedding model (the study config's key)",
    "method": "retrieval method (registry name)",
    "bits": "code bits per vector",
    "bytes_per_vector": "code bytes per vector (fixed overheads excluded)",
    "recall_at_10": "overlap with the exact float top-10",
    "ndcg_at_10": "nDCG@10 against the qrels",
    "ndcg_at_10_vs_float": "nDCG@10 / the float32 nDCG@10 of the same pair",
}
PREVIEW_COLUMNS = [c for c in RESULT_COLUMNS_SHOWN if c not in ("dataset", "model")]
COLUMN_DESCRIPTIONS = {
    **RESULT_COLUMNS_SHOWN,
    "extra_bytes_per_vector": "bytes stored beside each code (RaBitQ's factors, say)",
    "external_bytes_per_vector": "bytes kept elsewhere per vector (re-ranking floats on disk)",
    "fixed_overhead_bytes": "projections, codebooks, rotations, quantiser ranges",
    "index_bytes_total": "whole index: n_docs x (code + extra) + fixed overhead",
    **{f"recall_at_{k}": f"overlap with the exact float top-{k}" for k in (1, 5, 10, 50, 100)},
    "overlap_at_10": "Jaccard overlap of the top-10 and the float top-10 sets",
    "n_docs": "passages in the corpus",
    "n_queries": "queries scored",
}
SKIPPED_COLUMNS_SHOWN = {
    "dataset": "BEIR collection",
    "model": "embedding model (the study config's key)",
    "method": "retrieval method (registry name)",
    "bits": "code bits per vector",
    "reason": "why the method cannot be built on this corpus",
}
SCORING_INPUTS = ("query_embeddings", "float_ground_truth", "evaluation_qrels")
SKIPPED_TABLE = "skipped_methods"  # results/skipped_methods.parquet, beside the results table


def _summary(table: pl.DataFrame) -> dict:
    meta = {"dagster/row_count": table.height}
    if table.height:
        meta["preview"] = table_metadata(
            table, {c: RESULT_COLUMNS_SHOWN[c] for c in PREVIEW_COLUMNS}
        )
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


def _table_output(
    study: Study, rows: list[dict], pair: str, skipped: dict[str, str] | None = None
) -> dg.Output:
    """The partition's rows; ``skipped``: method -> why it could not be built here."""
    table = evaluation.rows_to_table(rows, *split_pair(pair))
    meta = {**provenance(study), **_summary(table), **_timings(rows)}
    if skipped:
        meta["skipped_methods"] = len(skipped)
        meta["skipped"] = "; ".join(f"{name}: {why}" for name, why in sorted(skipped.items()))
    return dg.Output(table, metadata=meta)


def _references(inputs: dict, n_docs: int) -> evaluation.References:
    queries = inputs["query_embeddings"]
    return evaluation.references(
        inputs["float_ground_truth"], inputs["evaluation_qrels"], len(queries), n_docs
    )


def score_stored(context: dg.AssetExecutionContext, study: Study, method: Method, inputs: dict):
    """The stored method's row from its index asset, and the checks it runs on that row."""
    pair, bits = partition_of(method, context.partition_key)
    built = Built(inputs[method.stored.asset])
    refs = _references(inputs, built.ntotal)
    where = f"{method.name} search [{pair}{f', {bits} bits' if bits else ''}]"
    settings = with_progress(settings_of(study), context, where)
    row = evaluation.search_and_score(
        method, built, inputs["query_embeddings"], refs, bits=bits, settings=settings
    )
    yield _table_output(study, [row], pair)
    outcomes = method.check_row(row, refs, settings)
    for check in method.stored.row_checks:
        yield check_result(context, check.name, outcomes[check.name], check)


def metrics_asset(study: Study, parts: StudyPartitions, method: Method) -> dg.AssetsDefinition:
    spec = method.stored
    name = f"{method.name}_metrics"
    at = "this bit length" if method.budget == "bits" else "this (dataset, model)"

    @dg.asset(
        **in_plan(CORE, spec.experiments[1]),
        name=name,
        partitions_def=(partitions := parts.pair_bits if method.budget == "bits" else parts.pair),
        io_manager_key="parquet_io_manager",
        kinds={"polars"},
        ins={spec.asset: dg.AssetIn(), **{n: dg.AssetIn() for n in SCORING_INPUTS}},
        description=(
            f"Row for {method.name} at {at} ({method.description}): its stored index "
            f"`{spec.asset}` searched for the top-K and scored against the float ground truth "
            "(recall, overlap) and the qrels (nDCG@10), as every method is."
        ),
        check_specs=[check_spec(name, c, partitions) for c in spec.row_checks],
    )
    @with_cpu_share
    def _metrics(context: dg.AssetExecutionContext, **inputs):
        yield from score_stored(context, study, method, inputs)

    return _metrics


def built_here(
    context, study: Study, budget: str, bits, corpus, queries, refs
) -> tuple[list[dict], dict[str, str]]:
    """Rows of the registered methods that are not stored: build, then search and score; and
    the methods skipped because they cannot be built on this corpus, with why."""
    pair = context.partition_key if bits is None else split_pair_bits(context.partition_key)[0]
    settings, planned = settings_of(study), plan_of(study, pair)
    chosen = study.methods.extra
    rows, skipped = [], {}
    for method in methods_for(budget):
        if method.name in study.methods.store or method.name == "float32":
            continue
        if not method.applies(corpus.shape[1], bits, planned):
            continue
        if chosen is not None and not method.in_plan and method.name not in chosen:
            continue
        reason = method.requirement(len(corpus), corpus.shape[1], bits, settings)
        if reason is not None:
            context.log.warning(f"{method.name} [{pair}, {bits or 'reference'}] skipped: {reason}")
            skipped[method.name] = reason
            continue
        step = with_progress(settings, context, f"{method.name} [{pair}, {bits or 'ref'}]")
        t0 = time.perf_counter()
        built = method.build(corpus, bits, step)
        build_seconds = time.perf_counter() - t0
        row = evaluation.search_and_score(method, built, queries, refs, bits=bits, settings=step)
        extra = method.diagnostics(built, queries, refs.truth_ids, settings)
        row["diagnostics"] = {f"{method.name}_{k}": v for k, v in extra.items()}
        context.log.info(
            f"{method.name} [{pair}, {bits or 'reference'}]: built in {build_seconds:.1f}s, "
            f"recall_at_10 {row['recall_at_10']:.4f}"
        )
        rows.append(row)
    return rows, skipped


def reference_rows(context, study: Study, corpus, inputs: dict):
    refs = _references(inputs, len(corpus))
    queries = inputs["query_embeddings"]
    exact = evaluation.method_row(
        METHODS["float32"],
        refs.truth_ids,
        refs,
        dim=queries.shape[1],
        bits=None,
        search_seconds=0.0,
    )
    built, skipped = built_here(context, study, "reference", None, corpus, queries, refs)
    return _table_output(study, [exact, *built], context.partition_key, skipped)


def bits_rows(context, study: Study, corpus, inputs: dict):
    pair, bits = split_pair_bits(context.partition_key)
    refs = _references(inputs, len(corpus))
    rows, skipped = built_here(
        context, study, "bits", bits, corpus, inputs["query_embeddings"], refs
    )
    return _table_output(study, rows, pair, skipped)


def results_table(study: Study, tables: dict, root: Root):
    """Every partition's rows in one table, and the planned rows it still lacks. The planned
    rows whose method cannot be built on its corpus are written beside it, with why
    (results/skipped_methods.parquet): a table of their own, so that every row of the results
    table has its metrics."""
    study_stamp.claim(root, study, None)  # another study's store: refused, naming both
    collected = [t for loaded in tables.values() for t in frames(loaded)]
    table = (
        # Partitions written by an older version may lack or carry extra columns.
        evaluation.conform(pl.concat(collected, how="diagonal_relaxed")).sort(
            "dataset", "model", "method", "bits"
        )
        if collected
        else evaluation.empty_results()
    )
    planned = plan.planned_result_rows(study)
    have = _have(table)
    skipped = cannot_build(study, table, planned - have)
    skipped_rows = evaluation.skipped_table(skipped)
    yield dg.Output(
        table,
        metadata={
            **provenance(study),
            "dagster/row_count": table.height,
            "table": table_metadata(table, RESULT_COLUMNS_SHOWN) if table.height else "empty",
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(c, str(t), description=COLUMN_DESCRIPTIONS.get(c))
                    for c, t in table.schema.items()
                ]
            ),
            "skipped_rows": skipped_rows.height,
            "skipped_table": dg.MetadataValue.path(str(side_table_path(root, SKIPPED_TABLE))),
            "skipped": table_metadata(skipped_rows, SKIPPED_COLUMNS_SHOWN)
            if skipped_rows.height
            else "none",
        },
    )
    # After the results table is written, so a failure there leaves both files as they were.
    write_side_table(root, SKIPPED_TABLE, skipped_rows)
    missing = sorted(planned - have - set(skipped))
    yield dg.AssetCheckResult(
        check_name="planned_rows_present",
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "planned_rows": len(planned),
            "missing_rows": len(missing),
            "first_missing": ", ".join("/".join(map(str, m)) for m in missing[:10]) or "none",
            "skipped_rows": len(skipped),
            "skipped": "; ".join(
                f"{'/'.join(map(str, row))}: {why}" for row, why in sorted(skipped.items())[:10]
            )
            or "none",
        },
    )


def _have(table: pl.DataFrame) -> set[tuple[str, str, str, int]]:
    if table.height == 0:
        return set()
    return {
        (r[0], r[1], r[2], int(r[3]))
        for r in table.select("dataset", "model", "method", "bits").iter_rows()
    }


def skipped_table(study: Study, table: pl.DataFrame) -> pl.DataFrame:
    """The planned rows ``table`` (the results table) lacks because their method cannot be built
    on the pair's corpus, with why (``evaluation.SKIPPED_COLUMNS``): what results_table writes
    to results/skipped_methods.parquet, for the kill-switches and the report."""
    # A table without the key columns or the corpus sizes (a hand-made one) names no reasons.
    if table.height == 0 or not {"dataset", "model", "method", "bits", "n_docs"} <= set(
        table.columns
    ):
        return evaluation.skipped_table({})
    planned = plan.planned_result_rows(study)
    return evaluation.skipped_table(cannot_build(study, table, planned - _have(table)))


def cannot_build(study: Study, table: pl.DataFrame, rows) -> dict[tuple, str]:
    """The rows among ``rows`` whose method cannot be built on its pair's corpus, with why (the
    corpus size is read from the pair's other rows)."""
    if table.height == 0:
        return {}
    sizes = {
        (d, m): int(n)
        for d, m, n in table.select("dataset", "model", "n_docs").unique().iter_rows()
        if n is not None
    }
    settings, out = settings_of(study), {}
    for dataset, model, name, bits in rows:
        method, n_docs = METHODS.get(name), sizes.get((dataset, model))
        if method is None or n_docs is None:
            continue
        budget = None if method.budget == "reference" else bits
        reason = method.requirement(n_docs, study.models[model].dim, budget, settings)
        if reason is not None:
            out[(dataset, model, name, bits)] = reason
    return out


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    scoring = {n: dg.AssetIn() for n in SCORING_INPUTS}

    @dg.asset(
        **in_plan(CORE, "E4-E6"),
        partitions_def=parts.pair,
        io_manager_key="parquet_io_manager",
        kinds={"faiss", "polars"},
        pool=MEMORY_HEAVY,
        ins={"corpus_embeddings": dg.AssetIn(), **scoring},
        description=(
            "Rows for the reference methods, whose size follows the model's dimension rather "
            "than a bit budget: float32 (the exact ranking itself: recall 1 by definition, its "
            "nDCG@10 is the model's task score) and every registered reference method that is "
            "not stored (built here from the corpus vectors)."
        ),
    )
    @with_cpu_share
    def reference_metrics(context: dg.AssetExecutionContext, corpus_embeddings, **inputs):
        return reference_rows(context, study, corpus_embeddings, inputs)

    @dg.asset(
        **in_plan(CORE, "E5-E6"),
        partitions_def=parts.pair_bits,
        io_manager_key="parquet_io_manager",
        kinds={"faiss", "polars"},
        pool=MEMORY_HEAVY,
        ins={"corpus_embeddings": dg.AssetIn(), **scoring},
        description=(
            "Rows for every registered bit-budget method that is not stored (beyond the plan: "
            "binary + re-ranking, asymmetric scoring, centred sign, ITQ, OPQ, PCA + int8, ...), "
            "each built from the corpus vectors at this bit length and scored like the "
            "instrument. Empty when no such method applies."
        ),
    )
    @with_cpu_share
    def method_metrics(context: dg.AssetExecutionContext, corpus_embeddings, **inputs):
        return bits_rows(context, study, corpus_embeddings, inputs)

    stored = [metrics_asset(study, parts, m) for m in stored_methods(study)]
    tables = ["reference_metrics", "method_metrics", *(a.key.path[-1] for a in stored)]

    @dg.asset(
        **in_plan(CORE, "E5-E6"),
        key=["results", "retrieval_metrics"],
        io_manager_key="parquet_io_manager",
        kinds={"polars", "parquet"},
        ins={name: all_partitions() for name in tables},
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
    def retrieval_metrics(context: dg.AssetExecutionContext, runtime: StudyRuntime, **tables):
        yield from results_table(study, tables, runtime.storage_root)

    return [reference_metrics, method_metrics, *stored, retrieval_metrics]
