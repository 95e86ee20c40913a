"""X3 (the light adapter), its results table and the GPU budget ledger.

The adapter trains on the corpus vectors of its pair only (held-out corpus rows act as
pseudo-queries), never on the evaluation queries, which only score it. K1 (Core behind schedule)
pauses it through the gate file; K2 is judged here, after the first configuration on the first
adapter pair, and written to the gate file at once so that no further configuration runs.
"""

import time

import dagster as dg
import polars as pl

from phase2_assets.compute.analysis import adapter_runs, decisions
from phase2_assets.compute.data import encoders
from phase2_assets.compute.report import memo, page
from phase2_assets.compute.report.ledger import DeviceRecord, ledger, over_budget
from phase2_assets.compute.search import evaluation
from phase2_assets.config import Study, split_pair
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.execution.pools import EMBEDDING, step_tags
from phase2_assets.defs.graph.groups import EXPLORATORY, REPORT, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions
from phase2_assets.defs.steps.provenance import provenance
from phase2_assets.defs.steps.runtime import StudyRuntime
from phase2_assets.defs.steps.settings import bfi_formula, settings_of
from phase2_assets.defs.steps.study_tables import all_partitions, frames
from phase2_assets.defs.storage import gates

LEDGER = {  # which asset's device seconds count against which budget
    "corpus_embeddings": "E1",
    "query_embeddings": "E1",
    "adapter_metrics": "X3",
}


def train_adapters(context, study: Study, runtime, corpus, queries, inputs) -> dg.Output:
    """X3 on one pair: every configuration in order at every adapter bit length; on the first
    adapter pair K2 is judged after the first configuration and written to the gate file."""
    pair = context.partition_key
    k2_pair = study.adapter_pairs()[0]
    gates.assert_open(runtime.storage_root, ("K1",), f"X3 on {pair}")
    if pair != k2_pair:
        gates.assert_open(runtime.storage_root, ("K2",), f"X3 on {pair}")
    dataset, model = split_pair(pair)
    configs = adapter_runs.adapter_configs(study.exploratory.adapters, f"study {study.name!r}")
    cfg_x = study.exploratory
    refs = evaluation.references(
        inputs["float_ground_truth"], inputs["evaluation_qrels"], len(queries), len(corpus)
    )
    device = encoders.pick_device(runtime.device)
    settings = settings_of(study)
    t0, cpu0 = time.perf_counter(), time.process_time()
    rows, k2, timings = [], None, {}
    for i, cfg in enumerate(configs):
        if k2 is not None and k2.fired:
            context.log.warning(f"K2 fired: adapter configs {i + 1}..{len(configs)} not run")
            break
        for bits in cfg_x.adapter_bits:
            row, timing = adapter_runs.run_adapter(
                cfg,
                bits,
                corpus,
                queries,
                refs,
                settings,
                device=device,
                geometry_sample=cfg_x.geometry_sample,
                geometry_pairs=cfg_x.geometry_pairs,
            )
            timings[f"{cfg.name}_{bits}_seconds"] = round(timing["seconds"], 3)
            context.log.info(
                f"{cfg.name} [{pair}, {bits} bits]: recall_at_10 "
                f"{row['baseline_recall_at_10']:.4f} -> {row['adapted_recall_at_10']:.4f} "
                f"in {timing['seconds']:.1f}s on {row['device']}"
            )
            rows.append({"dataset": dataset, "model": model, "config_index": i, **row})
        if i == 0 and pair == k2_pair:
            first = {r["bits"]: r["points_gained"] for r in rows}
            k2 = decisions.k2_adapter_no_signal(
                decisions.k2_gain(first), study.kill_switches.k2_min_gain_pp, pair
            )
            gates.update_gates(runtime.storage_root, [k2.to_dict()])
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    table = pl.DataFrame(rows)
    preview = ["adapter", "bits", "baseline_recall_at_10", "adapted_recall_at_10"]
    return dg.Output(
        table,
        metadata={
            **provenance(study),
            "dagster/row_count": table.height,
            "preview": dg.MetadataValue.md(page.markdown_table(table, [*preview, "points_gained"])),
            "configs_run": int(table["config_index"].n_unique()) if table.height else 0,
            "K2": k2.state if k2 else "judged on " + k2_pair,
            "device": device,
            "device_seconds": round(seconds, 3),
            "gpu_seconds": round(seconds, 3) if device.startswith("cuda") else 0.0,
            "cpu_seconds": round(cpu_seconds, 3),
            **timings,
        },
    )


def adapter_results_table(study: Study, adapter_metrics, retrieval_metrics) -> dg.Output:
    runs = frames(adapter_metrics)
    table = adapter_runs.adapter_table(
        pl.concat(runs, how="diagonal_relaxed") if runs else None, retrieval_metrics
    )
    cols = ["dataset", "model", "adapter", "bits", "baseline_recall_at_10"]
    cols += ["adapted_recall_at_10", "pq_recall_at_10", "itq_recall_at_10", "gap_closed"]
    meta = {**provenance(study), "dagster/row_count": table.height}
    if table.height:
        meta["preview"] = dg.MetadataValue.md(page.markdown_table(table, cols))
    return dg.Output(table, metadata=meta)


def sum_ledger(context, study: Study):
    records = list(device_records(context.instance))
    b = study.budget
    table = ledger(records, {"E1": b.e1_gpu_hours, "X3": b.x3_gpu_hours}, b.phase2_gpu_hours)
    over = over_budget(table)
    yield dg.Output(
        table,
        metadata={
            **provenance(study),
            "records": len(records),
            "preview": dg.MetadataValue.md(page.markdown_table(table, list(table.columns))),
        },
    )
    yield dg.AssetCheckResult(
        check_name="within_gpu_budget",
        passed=not over,
        metadata={"over_budget": ", ".join(over) or "none"},
    )


def write_memo(study: Study, tables: dict) -> dg.Output:
    v = study.verdict
    text = memo.design_memo(
        study_name=study.name,
        config_hash=study.config_hash(),
        verdict=tables["verdict"],
        switches=tables["kill_switches"]["switches"],
        bfi=tables["bfi"],
        bfi_formula=bfi_formula(study).text(),
        regression=tables["regression"],
        adapter=tables["adapter"],
        results=tables["retrieval_metrics"],
        ledger=tables["budget_ledger"],
        green_bits=v.green_bits,
        green_recall=v.green_recall_at_10,
        green_ratio=v.green_ratio_vs_pq,
        bands=tables["target_bands"]["bands"],
        ladder=tables["corpus_ladder"],
    )
    return dg.Output(text, metadata={**provenance(study), "memo": dg.MetadataValue.md(text)})


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    adapter_runs.adapter_configs(study.exploratory.adapters, f"study {study.name!r}")  # early
    k2_pair = study.adapter_pairs()[0]

    @dg.asset(
        **in_plan(EXPLORATORY, "X3"),
        partitions_def=parts.adapter_pair,
        io_manager_key="parquet_io_manager",
        kinds={"torch", "polars"},
        pool=EMBEDDING,
        op_tags=step_tags(EMBEDDING),
        description=(
            "X3: a small learned projection + sign (compute/analysis/adapter.py) trained with "
            "torch on the pair's cached corpus vectors only (held-out corpus rows as "
            "pseudo-queries; the evaluation queries only score it), against the instrument at "
            "the same bits: recall_at_10 and nDCG@10 before and after, points gained, the "
            "pre-sign geometry before and after, seconds and device. Configurations run in "
            f"order (at most 3); on the first adapter pair ({k2_pair}) K2 is judged after the "
            "first and stops the rest when the 256-bit gain is below its threshold. Paused when "
            "K1 has fired."
        ),
    )
    @with_cpu_share
    def adapter_metrics(
        context: dg.AssetExecutionContext,
        runtime: StudyRuntime,
        corpus_embeddings,
        query_embeddings,
        float_ground_truth,
        evaluation_qrels: pl.DataFrame,
    ):
        references = {
            "float_ground_truth": float_ground_truth,
            "evaluation_qrels": evaluation_qrels,
        }
        return train_adapters(
            context, study, runtime, corpus_embeddings, query_embeddings, references
        )

    @dg.asset(
        **in_plan(EXPLORATORY, "X3"),
        key=["results", "adapter"],
        io_manager_key="parquet_io_manager",
        kinds={"polars"},
        ins={
            "adapter_metrics": all_partitions(),
            "retrieval_metrics": dg.AssetIn(key=["results", "retrieval_metrics"]),
        },
        description=(
            "data/results/adapter.parquet: every X3 run beside PQ and ITQ at the same bytes per "
            "vector: recall_at_10 of the instrument, the adapter, PQ and ITQ, points gained and "
            "the fraction of the binary -> PQ gap closed (adapter and ITQ)."
        ),
    )
    @with_cpu_share
    def adapter_results(context: dg.AssetExecutionContext, adapter_metrics, retrieval_metrics):
        return adapter_results_table(study, adapter_metrics, retrieval_metrics)

    @dg.asset(
        **in_plan(REPORT, "budget"),
        key=["results", "budget_ledger"],
        io_manager_key="parquet_io_manager",
        kinds={"polars"},
        deps=[*LEDGER],
        description=(
            "data/results/budget_ledger.parquet: GPU-hours and CPU-hours of the embeddings (E1) "
            "and adapters (X3) behind the current results (the latest materialisation of each "
            "partition in this Dagster instance), summed per experiment and for Phase 2, against "
            "the plan's budgets (config `budget:`); spent_* columns add what reruns spent."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "within_gpu_budget",
                asset=["results", "budget_ledger"],
                description="Every experiment and Phase 2 as a whole stay within their GPU-hour "
                "budgets (E1 <= 25, X3 <= 5, Phase 2 <= 65 by default).",
            )
        ],
    )
    @with_cpu_share
    def budget_ledger(context: dg.AssetExecutionContext):
        yield from sum_ledger(context, study)

    @dg.asset(
        **in_plan(EXPLORATORY, "X4"),
        key=["results", "design_memo"],
        io_manager_key="md_io_manager",
        kinds={"markdown"},
        ins={
            name: dg.AssetIn(key=["results", name])
            for name in (
                "retrieval_metrics",
                "regression",
                "bfi",
                "kill_switches",
                "verdict",
                "adapter",
                "budget_ledger",
                "target_bands",
                "corpus_ladder",
            )
        },
        description=(
            "X4, data/results/design_memo.md: the Phase-3/4 memo written from the tables: what "
            "the study found (every experiment's target band), the BFI "
            "definition and threshold, geometry rules (only if F3 did not fire), adapter "
            "baselines, kill-switch states, how recall moved with corpus size, a ranked Phase-3 "
            "experiment list with numeric success criteria, and the budget ledger. No number in "
            "it is typed by hand."
        ),
    )
    @with_cpu_share
    def design_memo(context: dg.AssetExecutionContext, **tables):
        return write_memo(study, tables)

    return [adapter_metrics, adapter_results, budget_ledger, design_memo]


def device_records(instance: dg.DagsterInstance, limit: int = 10000):
    """One ledger record per embedding / adapter materialisation that recorded its seconds."""
    for asset, experiment in LEDGER.items():
        result = instance.fetch_materializations(dg.AssetKey(asset), limit=limit)
        for record in result.records:
            mat = record.asset_materialization
            meta = mat.metadata if mat else {}
            if "device_seconds" not in meta:
                continue
            yield DeviceRecord(
                experiment=experiment,
                asset=asset,
                partition=mat.partition,
                device=str(meta["device"].value),
                seconds=float(meta["device_seconds"].value),
                cpu_seconds=float(meta["cpu_seconds"].value) if "cpu_seconds" in meta else 0.0,
                order=record.storage_id,
            )
