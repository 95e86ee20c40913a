"""X3 (the light adapter), its results table and the GPU budget ledger.

The adapter trains on the corpus vectors of its pair only (held-out corpus rows act as
pseudo-queries), never on the evaluation queries, which only score it. K1 (Core behind schedule)
pauses it through the gate file; K2 is judged here, after the first configuration on the first
adapter pair, and written to the gate file at once so that no further configuration runs.
"""

import time

import dagster as dg
import numpy as np
import polars as pl

from phase2_assets.compute.analysis import adapter as adapter_lib
from phase2_assets.compute.analysis import decisions, geometry
from phase2_assets.compute.data import encoders
from phase2_assets.compute.methods import METHODS, Built, instrument
from phase2_assets.compute.report import memo, page
from phase2_assets.compute.report.ledger import DeviceRecord, ledger, over_budget
from phase2_assets.compute.search import evaluation
from phase2_assets.config import Study, split_pair
from phase2_assets.defs import gates
from phase2_assets.defs.cpu_share import with_cpu_share
from phase2_assets.defs.groups import EXPLORATORY, REPORT, in_plan
from phase2_assets.defs.partitions import StudyPartitions
from phase2_assets.defs.pools import EMBEDDING
from phase2_assets.defs.provenance import provenance
from phase2_assets.defs.resources import StudyRuntime
from phase2_assets.defs.results_io import all_partitions, frames
from phase2_assets.defs.settings import settings_of

GEOMETRY_SAMPLE = 4000
LEDGER = {  # which asset's device seconds count against which budget
    "corpus_embeddings": "E1",
    "query_embeddings": "E1",
    "adapter_metrics": "X3",
}


def adapter_configs(study: Study) -> list[adapter_lib.AdapterConfig]:
    """The study's X3 configurations as compute configs; a wrong key names the adapter."""
    out = []
    for i, fields in enumerate(study.exploratory.adapters):
        try:
            out.append(adapter_lib.AdapterConfig(**fields))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"study {study.name!r}: exploratory.adapters[{i}]: {exc}") from exc
    return out


def _pre_sign_geometry(projected: np.ndarray, codes: np.ndarray, bits: int, seed: int) -> dict:
    emb = geometry.embedding_geometry(projected, pair_sample=2000, seed=seed)
    code = geometry.code_diagnostics(codes, bits, pair_sample=2000, seed=seed)
    # Rounded: the pair angles go through multithreaded BLAS sums, which may differ in the last
    # float bits between runs; the table must not.
    return {
        "anisotropy_centred": round(emb["anisotropy_centred"], 6),
        "angular_spread_deg": round(emb["angular_spread_deg"], 6),
        "mean_bit_entropy": round(code["mean_bit_entropy"], 6),
    }


def run_adapter(study, cfg, bits, corpus, queries, refs, device) -> tuple[dict, dict]:
    """Instrument vs adapter at ``bits`` on one pair: (the table row, its timings), both scored
    by ``evaluation.search_and_score`` like every method.

    Timings are metadata, not columns, so that a rerun gives an identical table."""
    seed = study.seeds.projection
    settings = settings_of(study)
    t0 = time.perf_counter()
    method = adapter_lib.AdapterMethod(cfg, seed=seed, device=device)
    built = method.build(corpus, bits, settings)
    fitted, codes = built.index.adapter, built.index.codes
    base_codes = METHODS["binary"].build(corpus, bits, settings).index
    base = evaluation.search_and_score(
        METHODS["binary"], Built(base_codes), queries, refs, bits=bits, settings=settings
    )
    adapted = evaluation.search_and_score(
        method, built, queries, refs, bits=bits, settings=settings
    )
    rows = np.sort(
        np.random.default_rng(seed).choice(
            len(corpus), min(GEOMETRY_SAMPLE, len(corpus)), replace=False
        )
    )
    sample = np.asarray(corpus[rows], dtype=np.float32)
    before = _pre_sign_geometry(
        sample @ instrument.projection_matrix(sample.shape[1], bits, seed).T,
        base_codes[rows],
        bits,
        seed,
    )
    after = _pre_sign_geometry(fitted.project(sample), codes[rows], bits, seed)
    return {
        "adapter": cfg.name,
        "bits": bits,
        "baseline_recall_at_10": base["recall_at_10"],
        "adapted_recall_at_10": adapted["recall_at_10"],
        "points_gained": adapter_lib.points_gained(base["recall_at_10"], adapted["recall_at_10"]),
        "baseline_ndcg_at_10": base["ndcg_at_10"],
        "adapted_ndcg_at_10": adapted["ndcg_at_10"],
        "best_epoch": fitted.best_epoch,
        "epochs_run": len(fitted.recall_history) - 1,
        "anchor_source": fitted.anchor_source,
        "training_rows": len(fitted.pool_rows),
        "fixed_overhead_bytes": fitted.overhead_bytes,
        **{f"baseline_{k}": v for k, v in before.items()},
        **{f"adapted_{k}": v for k, v in after.items()},
        "device": fitted.device,
    }, {"seconds": time.perf_counter() - t0, "training_seconds": fitted.seconds}


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    configs = adapter_configs(study)
    k2_pair = study.adapter_pairs()[0]
    ks = study.kill_switches

    @dg.asset(
        **in_plan(EXPLORATORY, "X3"),
        partitions_def=parts.adapter_pair,
        io_manager_key="parquet_io_manager",
        kinds={"torch", "polars"},
        pool=EMBEDDING,
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
        pair = context.partition_key
        gates.assert_open(runtime.data_dir, ("K1",), f"X3 on {pair}")
        if pair != k2_pair:
            gates.assert_open(runtime.data_dir, ("K2",), f"X3 on {pair}")
        dataset, model = split_pair(pair)
        refs = evaluation.references(
            float_ground_truth, evaluation_qrels, len(query_embeddings), len(corpus_embeddings)
        )
        device = encoders.pick_device(runtime.device)
        t0, cpu0 = time.perf_counter(), time.process_time()
        rows, k2, timings = [], None, {}
        for i, cfg in enumerate(configs):
            if k2 is not None and k2.fired:
                context.log.warning(f"K2 fired: adapter configs {i + 1}..{len(configs)} not run")
                break
            for bits in study.exploratory.adapter_bits:
                row, timing = run_adapter(
                    study, cfg, bits, corpus_embeddings, query_embeddings, refs, device
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
                    decisions.k2_gain(first), ks.k2_min_gain_pp, pair
                )
                gates.update_gates(runtime.data_dir, [k2.to_dict()])
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
        table = pl.DataFrame(rows)
        preview = ["adapter", "bits", "baseline_recall_at_10", "adapted_recall_at_10"]
        return dg.Output(
            table,
            metadata={
                **provenance(study),
                "dagster/row_count": table.height,
                "preview": dg.MetadataValue.md(
                    page.markdown_table(table, [*preview, "points_gained"], 4)
                ),
                "configs_run": int(table["config_index"].n_unique()) if table.height else 0,
                "K2": k2.state if k2 else "judged on " + k2_pair,
                "device": device,
                "device_seconds": round(seconds, 3),
                "gpu_seconds": round(seconds, 3) if device.startswith("cuda") else 0.0,
                "cpu_seconds": round(cpu_seconds, 3),
                **timings,
            },
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
        runs = frames(adapter_metrics)
        table = adapter_table(
            pl.concat(runs, how="diagonal_relaxed") if runs else None, retrieval_metrics
        )
        cols = ["dataset", "model", "adapter", "bits", "baseline_recall_at_10"]
        cols += ["adapted_recall_at_10", "pq_recall_at_10", "itq_recall_at_10", "gap_closed"]
        meta = {**provenance(study), "dagster/row_count": table.height}
        if table.height:
            meta["preview"] = dg.MetadataValue.md(page.markdown_table(table, cols, 4))
        return dg.Output(table, metadata=meta)

    @dg.asset(
        **in_plan(REPORT, "budget"),
        key=["results", "budget_ledger"],
        io_manager_key="parquet_io_manager",
        kinds={"polars"},
        deps=[*LEDGER],
        description=(
            "data/results/budget_ledger.parquet: GPU-hours and CPU-hours of every embedding (E1) "
            "and adapter (X3) materialisation recorded in this Dagster instance, summed per "
            "experiment and for Phase 2, against the plan's budgets (config `budget:`)."
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
        records = list(device_records(context.instance))
        b = study.budget
        table = ledger(records, {"E1": b.e1_gpu_hours, "X3": b.x3_gpu_hours}, b.phase2_gpu_hours)
        over = over_budget(table)
        yield dg.Output(
            table,
            metadata={
                **provenance(study),
                "records": len(records),
                "preview": dg.MetadataValue.md(page.markdown_table(table, list(table.columns), 3)),
            },
        )
        yield dg.AssetCheckResult(
            check_name="within_gpu_budget",
            passed=not over,
            metadata={"over_budget": ", ".join(over) or "none"},
        )

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
            )
        },
        description=(
            "X4, data/results/design_memo.md: the Phase-3/4 memo written from the tables: BFI "
            "definition and threshold, geometry rules (only if F3 did not fire), adapter "
            "baselines, kill-switch states, a ranked Phase-3 experiment list with numeric "
            "success criteria, and the budget ledger. No number in it is typed by hand."
        ),
    )
    @with_cpu_share
    def design_memo(
        context: dg.AssetExecutionContext,
        retrieval_metrics,
        regression,
        bfi,
        kill_switches,
        verdict,
        adapter,
        budget_ledger,
    ):
        f = study.bfi
        formula = (
            f"BFI = clip(({f.w_recall} R + {f.w_ratio} Q) / {f.w_recall + f.w_ratio} - P, 0, 1); "
            f"R = mean binary recall_at_10 over {f.recall_bits} bits; Q = mean of min(1, binary / "
            f"PQ recall_at_10) over the same bits; P = {f.anisotropy_penalty} x max(0, log10("
            f"anisotropy_centred / {f.anisotropy_reference}))."
        )
        text = memo.design_memo(
            study_name=study.name,
            config_hash=study.config_hash(),
            verdict=verdict,
            switches=kill_switches["switches"],
            bfi=bfi,
            bfi_formula=formula,
            regression=regression,
            adapter=adapter,
            results=retrieval_metrics,
            ledger=budget_ledger,
            green_bits=study.verdict.green_bits,
            green_recall=study.verdict.green_recall_at_10,
            green_ratio=study.verdict.green_ratio_vs_pq,
        )
        return dg.Output(text, metadata={**provenance(study), "memo": dg.MetadataValue.md(text)})

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
            )


def adapter_table(runs: pl.DataFrame | None, results: pl.DataFrame) -> pl.DataFrame:
    """Adapter runs joined with PQ and ITQ recall at the same bits, and the gap closed."""
    if runs is None or runs.height == 0:
        return pl.DataFrame()
    keys = ["dataset", "model", "bits"]
    for method in ("pq", "itq"):
        other = pl.DataFrame(schema={**dict.fromkeys(keys[:2], pl.String), "bits": pl.Int64})
        if results.height and "method" in results.columns:
            other = results.filter(pl.col("method") == method).select(
                *keys, pl.col("recall_at_10").alias(f"{method}_recall_at_10")
            )
        if f"{method}_recall_at_10" not in other.columns:
            other = other.with_columns(pl.lit(None, pl.Float64).alias(f"{method}_recall_at_10"))
        runs = runs.join(
            other.with_columns(pl.col("bits").cast(runs["bits"].dtype)), on=keys, how="left"
        )
    gap = [
        adapter_lib.gap_closed(b, a, p if p is not None else float("nan"))
        for b, a, p in runs.select(
            "baseline_recall_at_10", "adapted_recall_at_10", "pq_recall_at_10"
        ).iter_rows()
    ]
    itq_gap = [
        adapter_lib.gap_closed(b, i, p) if i is not None and p is not None else float("nan")
        for b, i, p in runs.select(
            "baseline_recall_at_10", "itq_recall_at_10", "pq_recall_at_10"
        ).iter_rows()
    ]
    return runs.with_columns(
        gap_closed=pl.Series(gap, dtype=pl.Float64),
        itq_gap_closed=pl.Series(itq_gap, dtype=pl.Float64),
    ).sort("dataset", "model", "config_index", "bits")
