"""X3's runs: the adapter against the instrument at the same bits on one pair, and X3's table
beside PQ and ITQ at the same bytes per vector.

Both scored through ``evaluation.search_and_score``, like every method. Timings are returned
apart from the row, so that a rerun gives an identical table.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from phase2_assets.compute import threads
from phase2_assets.compute.analysis import adapter as adapter_lib
from phase2_assets.compute.analysis import geometry
from phase2_assets.compute.methods import METHODS, Built, Settings, instrument
from phase2_assets.compute.search import evaluation


def adapter_configs(configs: list[dict], where: str) -> list[adapter_lib.AdapterConfig]:
    """The configured X3 configurations; a wrong key names ``where`` and the configuration."""
    out = []
    for i, fields in enumerate(configs):
        try:
            out.append(adapter_lib.AdapterConfig(**fields))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: exploratory.adapters[{i}]: {exc}") from exc
    return out


def pre_sign_geometry(projected: np.ndarray, codes: np.ndarray, bits: int, pairs: int, seed: int):
    emb = geometry.embedding_geometry(projected, pair_sample=pairs, seed=seed)
    code = geometry.code_diagnostics(codes, bits, pair_sample=pairs, seed=seed)
    # Rounded for reading; the inputs are computed on one thread (run_adapter), so the values are
    # the same on every run, not only after rounding.
    return {
        "anisotropy_centred": round(emb["anisotropy_centred"], 6),
        "angular_spread_deg": round(emb["angular_spread_deg"], 6),
        "mean_bit_entropy": round(code["mean_bit_entropy"], 6),
    }


def run_adapter(
    cfg: adapter_lib.AdapterConfig,
    bits: int,
    corpus: np.ndarray,
    queries: np.ndarray,
    refs: evaluation.References,
    settings: Settings,
    *,
    device: str,
    geometry_sample: int,
    geometry_pairs: int,
) -> tuple[dict, dict]:
    """Instrument vs adapter at ``bits`` on one pair: (the table row, its timings). The pre-sign
    geometry is measured on a seeded sample of ``geometry_sample`` corpus rows."""
    seed = settings.projection_seed
    t0 = time.perf_counter()
    method = adapter_lib.AdapterMethod(cfg, seed=seed, device=device)
    built = method.build(corpus, bits, settings)
    fitted, codes = built.index.adapter, built.index.codes
    binary = METHODS["binary"]
    base_codes = binary.build(corpus, bits, settings).index
    base = evaluation.search_and_score(
        binary, Built(base_codes), queries, refs, bits=bits, settings=settings
    )
    adapted = evaluation.search_and_score(
        method, built, queries, refs, bits=bits, settings=settings
    )
    rows = np.sort(
        np.random.default_rng(seed).choice(
            len(corpus), min(geometry_sample, len(corpus)), replace=False
        )
    )
    sample = np.asarray(corpus[rows], dtype=np.float32)
    projection = instrument.projection_matrix(sample.shape[1], bits, seed)
    # The sample's projections on one thread: a BLAS sgemm's last bits depend on how many threads
    # split it, and the angles read them (issue 18: 11.84534 vs 11.845339 between two runs).
    with threads.single_thread():
        before_z, after_z = sample @ projection.T, fitted.project(sample)
    before = pre_sign_geometry(before_z, base_codes[rows], bits, geometry_pairs, seed)
    after = pre_sign_geometry(after_z, codes[rows], bits, geometry_pairs, seed)
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
