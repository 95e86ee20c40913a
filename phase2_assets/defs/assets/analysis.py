"""Analysis track: geometry (E7), BFI (X1) and geometry -> quality predictors (E8, X2)."""

import dagster as dg
import polars as pl

from phase2_assets.compute.analysis import bfi as bfi_lib
from phase2_assets.compute.analysis import geometry
from phase2_assets.compute.analysis import regression as regression_lib
from phase2_assets.compute.report import page
from phase2_assets.compute.report.figure_registry import FigureSettings
from phase2_assets.config import Study, split_pair
from phase2_assets.defs.execution.cpu_share import with_cpu_share
from phase2_assets.defs.graph.groups import ANALYSIS, in_plan
from phase2_assets.defs.graph.partitions import StudyPartitions, split_pair_bits
from phase2_assets.defs.steps.provenance import outcome_metadata, provenance
from phase2_assets.defs.steps.runtime import StudyRuntime
from phase2_assets.defs.steps.settings import bfi_formula
from phase2_assets.defs.steps.study_tables import (
    all_partitions,
    attach_registered,
    frames,
    table_metadata,
)

BFI_COLUMNS = {
    "dataset": "BEIR collection",
    "model": "embedding model",
    "bfi": "Binary Friendliness Index (the config's formula)",
    "recall_at_10_256": "instrument recall_at_10 at 256 bits",
    "recall_component": "the formula's recall term",
    "ratio_component": "the formula's binary/PQ ratio term",
    "anisotropy_penalty_value": "the formula's anisotropy penalty",
}


def _one_row(values: dict) -> pl.DataFrame:
    return pl.DataFrame([values])


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    sample, seed = study.analysis.pair_sample, study.seeds.checks
    settings = FigureSettings(features=tuple(study.analysis.features))

    @dg.asset(
        **in_plan(ANALYSIS, "E7"),
        partitions_def=parts.pair,
        io_manager_key="parquet_io_manager",
        kinds={"numpy"},
        description=(
            "Geometry of one (dataset, model)'s float passage embeddings: anisotropy "
            "sigma_1/sigma_median (uncentred and centred, exact from float64 second moments), "
            "outlier ('rogue') dimensions, intrinsic dimension at 90% PCA variance, mean pairwise "
            f"cosine and angular spread on {sample} seeded random pairs."
        ),
    )
    @with_cpu_share
    def embedding_geometry(context: dg.AssetExecutionContext, corpus_embeddings):
        dataset, model = split_pair(context.partition_key)
        values = geometry.embedding_geometry(corpus_embeddings, pair_sample=sample, seed=seed)
        return dg.Output(
            _one_row({"dataset": dataset, "model": model, **values}),
            metadata={**provenance(study, checks=seed), **outcome_metadata(values)},
        )

    @dg.asset(
        **in_plan(ANALYSIS, "E7"),
        partitions_def=parts.pair_bits,
        io_manager_key="parquet_io_manager",
        kinds={"numpy"},
        description=(
            "Code-level diagnostics of the instrument at one bit length: per-bit balance and "
            "entropy, duplicate codes, and the Hamming-distance histogram of random passage pairs."
        ),
    )
    @with_cpu_share
    def code_geometry(context: dg.AssetExecutionContext, binary_codes):
        pair, bits = split_pair_bits(context.partition_key)
        dataset, model = split_pair(pair)
        values = geometry.code_diagnostics(binary_codes, bits, pair_sample=sample, seed=seed)
        histogram = values.pop("hamming_histogram")
        values["code_pairs"] = values.pop("n_pairs")  # not to be confused with the float pairs
        row = {"dataset": dataset, "model": model, **values, "hamming_histogram": histogram}
        return dg.Output(
            pl.DataFrame([row], schema_overrides={"hamming_histogram": pl.List(pl.Int64)}),
            metadata={**provenance(study, checks=seed), **outcome_metadata(values)},
        )

    @dg.asset(
        **in_plan(ANALYSIS, "E7"),
        key=["results", "geometry"],
        io_manager_key="parquet_io_manager",
        kinds={"polars", "plotly"},
        ins={
            "embedding_geometry": all_partitions(),
            "code_geometry": all_partitions(),
        },
        description=(
            "data/results/geometry.parquet: one row per (dataset, model, bits) with the float "
            "embedding geometry of the pair and the code diagnostics at that bit length."
        ),
    )
    @with_cpu_share
    def geometry_table(context: dg.AssetExecutionContext, runtime: StudyRuntime, **inputs):
        emb = frames(inputs["embedding_geometry"])
        codes = frames(inputs["code_geometry"])
        if not emb:
            table = pl.DataFrame(schema={"dataset": pl.String, "model": pl.String})
        else:
            table = pl.concat(emb, how="diagonal_relaxed")
            if codes:
                code_table = pl.concat(codes, how="diagonal_relaxed")
                table = table.join(code_table, on=["dataset", "model"], how="left")
            table = table.sort([c for c in ("dataset", "model", "bits") if c in table.columns])
        meta = {"dagster/row_count": table.height, **provenance(study)}
        meta.update(
            attach_registered(
                runtime.storage_root, context.asset_key, {"geometry": table}, settings
            )
        )
        return dg.Output(table, metadata=meta)

    @dg.asset(
        **in_plan(ANALYSIS, "X1-X2"),
        key=["results", "bfi"],
        io_manager_key="parquet_io_manager",
        kinds={"polars", "plotly"},
        ins={
            "retrieval_metrics": dg.AssetIn(key=["results", "retrieval_metrics"]),
            "geometry": dg.AssetIn(key=["results", "geometry"]),
        },
        description=(
            "data/results/bfi.parquet: the Binary Friendliness Index per (dataset, model), "
            f"a transparent formula from the config ({bfi_formula(study).text()}), with its "
            "components, spread across pairs and Spearman rank agreement with recall_at_10@256."
        ),
    )
    @with_cpu_share
    def bfi(context: dg.AssetExecutionContext, runtime: StudyRuntime, retrieval_metrics, geometry):
        table = bfi_lib.compute_bfi(
            retrieval_metrics, bfi_formula(study), regression_lib.per_pair(geometry)
        )
        summary = bfi_lib.bfi_summary(table)
        meta = {"dagster/row_count": table.height, **provenance(study), **outcome_metadata(summary)}
        if table.height:
            meta["bfi_table"] = table_metadata(table.sort("bfi", descending=True), BFI_COLUMNS)
            for row in table.iter_rows(named=True):  # each pair's index, charted over runs
                if row["bfi"] is not None and row["bfi"] == row["bfi"]:
                    meta[f"bfi_{row['dataset']}__{row['model']}"] = round(row["bfi"], 4)
        meta.update(attach_registered(runtime.storage_root, context.asset_key, {"bfi": table}))
        return dg.Output(table, metadata=meta)

    @dg.asset(
        **in_plan(ANALYSIS, "E8"),
        key=["results", "regression"],
        io_manager_key="parquet_io_manager",
        kinds={"scikit-learn", "polars", "plotly"},
        ins={
            "retrieval_metrics": dg.AssetIn(key=["results", "retrieval_metrics"]),
            "geometry": dg.AssetIn(key=["results", "geometry"]),
            "bfi": dg.AssetIn(key=["results", "bfi"]),
        },
        description=(
            "data/results/regression.parquet: ridge, lasso and a tiny MLP, scored by "
            "leave-one-(dataset, model)-out CV (R2, RMSE, Spearman rho of predicted vs actual) "
            "with seeded bootstrap intervals. Targets: recall_at_10 from geometry + log2(bits); "
            "recall_at_10_within_bits (recall minus the mean at its bit length) from geometry "
            "alone, which F3 and K3 read; and BFI (one point per pair) from geometry. K3 is "
            "applied after the linear fits: if it fires, no MLP is fitted."
        ),
    )
    @with_cpu_share
    def regression(
        context: dg.AssetExecutionContext, runtime: StudyRuntime, retrieval_metrics, geometry, bfi
    ):
        return fit_regressions(context, study, runtime, retrieval_metrics, geometry, bfi)

    return [embedding_geometry, code_geometry, geometry_table, bfi, regression]


def fit_regressions(context, study: Study, runtime, results, geometry, bfi) -> dg.Output:
    cfg = study.analysis
    fitted = regression_lib.fit_regressions(
        results,
        geometry,
        bfi,
        features=list(cfg.features),
        seed=study.seeds.checks,
        n_bootstrap=cfg.n_bootstrap,
        min_points=cfg.min_points,
        thresholds=study.kill_switches,
    )
    if fitted.k3 is not None and fitted.k3.fired:
        context.log.warning(f"K3 fired ({fitted.k3.numbers}): the MLP is not fitted")
    table = fitted.table
    meta = {
        "dagster/row_count": table.height,
        "n_points": dg.MetadataValue.text(str(fitted.n_points)),
        **provenance(study, checks=study.seeds.checks),
    }
    if table.height:
        meta["summary"] = dg.MetadataValue.md(_regression_md(table))
    predictions = {"predictions": fitted.predictions}
    meta.update(attach_registered(runtime.storage_root, context.asset_key, predictions))
    return dg.Output(table, metadata=meta)


def _regression_md(table: pl.DataFrame) -> str:
    cols = ["target", "model", "n_points", "loocv_r2", "loocv_rmse", "spearman_rho", "status"]
    return page.markdown_table(table, cols)
