"""Analysis track: geometry (E7), BFI (X1) and geometry -> quality predictors (E8, X2)."""

import dagster as dg
import polars as pl

from phase2_assets.compute.analysis import bfi as bfi_lib
from phase2_assets.compute.analysis import decisions, geometry, predictors
from phase2_assets.compute.report import figures, page
from phase2_assets.config import Study, split_pair
from phase2_assets.defs.cpu_share import with_cpu_share
from phase2_assets.defs.groups import ANALYSIS, in_plan
from phase2_assets.defs.partitions import StudyPartitions, split_pair_bits
from phase2_assets.defs.provenance import outcome_metadata, provenance
from phase2_assets.defs.resources import StudyRuntime
from phase2_assets.defs.results_io import all_partitions, attach_figure, frames

LINEAR_MODELS = ("ridge", "lasso")
GEOMETRY_TARGET = decisions.GEOMETRY_TARGET
PAIR = ["dataset", "model"]


def _one_row(values: dict) -> pl.DataFrame:
    return pl.DataFrame([values])


def build(study: Study, parts: StudyPartitions) -> list[dg.AssetsDefinition]:
    sample, seed = study.analysis.pair_sample, study.seeds.checks

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
        if table.height:
            meta.update(
                attach_figure(
                    runtime.data_dir,
                    "geometry_panels",
                    figures.geometry_panels(table, study.analysis.features),
                )
            )
            meta.update(
                attach_figure(
                    runtime.data_dir, "hamming_histograms", figures.hamming_histograms(table)
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
            f"a transparent formula from the config ({_bfi_formula_text(study)}), with its "
            "components, spread across pairs and Spearman rank agreement with recall_at_10@256."
        ),
    )
    @with_cpu_share
    def bfi(context: dg.AssetExecutionContext, runtime: StudyRuntime, retrieval_metrics, geometry):
        table = bfi_lib.compute_bfi(retrieval_metrics, _bfi_formula(study), _per_pair(geometry))
        summary = bfi_lib.bfi_summary(table)
        meta = {"dagster/row_count": table.height, **provenance(study), **outcome_metadata(summary)}
        if table.height:
            meta.update(attach_figure(runtime.data_dir, "bfi_ranking", figures.bfi_ranking(table)))
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
        cfg = study.analysis
        points = predictors.design_table(
            retrieval_metrics, _per_pair(geometry), list(cfg.features), bfi=bfi
        )
        geometry_only = [f for f in cfg.features if f != "log2_bits"]
        if points.height:
            points = points.with_columns(
                (pl.col("recall_at_10") - pl.col("recall_at_10").mean().over("bits")).alias(
                    GEOMETRY_TARGET
                )
            )
        per_pair = points.unique(subset=["dataset", "model"], keep="first", maintain_order=True)
        fits = [
            # The plan's predictor: geometry + bits -> recall_at_10.
            ("recall_at_10", points, list(cfg.features), PAIR),
            # Geometry's own signal: the pair's recall relative to the mean at its bit length.
            # F3 and K3 read this one (bits alone would make any model look predictive).
            (GEOMETRY_TARGET, points, geometry_only, PAIR),
            # BFI is one number per pair.
            ("bfi", per_pair, geometry_only, None),
        ]

        def fit(target, pts, features, group_by, models):
            return predictors.fit_predictors(
                pts,
                features,
                target,
                seed=study.seeds.checks,
                n_bootstrap=cfg.n_bootstrap,
                min_points=cfg.min_points,
                models=models,
                return_predictions=True,
                group_by=group_by,
            )

        linear = {t: fit(t, p, f, g, LINEAR_MODELS) for t, p, f, g in fits if t in p.columns}
        k3 = _k3(study, linear[GEOMETRY_TARGET][0]) if GEOMETRY_TARGET in linear else None
        tables, preds = [], []
        for target, pts, features, group_by in fits:
            if target not in linear:
                continue
            table_t, pred_t = linear[target]
            if k3 is not None and k3.fired:
                table_t = pl.concat([table_t, predictors.blocked_row("mlp", target, pts, k3.rule)])
            else:
                mlp, mlp_pred = fit(target, pts, features, group_by, ("mlp",))
                table_t = pl.concat([table_t, mlp], how="diagonal_relaxed")
                pred_t = pl.concat([pred_t, mlp_pred], how="diagonal_relaxed")
            tables.append(table_t)
            if target == "recall_at_10":
                preds.append(pred_t)
        if k3 is not None and k3.fired:
            context.log.warning(f"K3 fired ({k3.numbers}): the MLP is not fitted")
        table = pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame()
        meta = {
            "dagster/row_count": table.height,
            "n_points": points.height,
            **provenance(study, checks=study.seeds.checks),
        }
        if table.height:
            meta["summary"] = dg.MetadataValue.md(_regression_md(table))
        if preds and preds[0].height:
            fig = figures.predicted_vs_actual(pl.concat(preds, how="diagonal_relaxed"))
            meta.update(attach_figure(runtime.data_dir, "predicted_vs_actual", fig))
        return dg.Output(table, metadata=meta)

    return [embedding_geometry, code_geometry, geometry_table, bfi, regression]


def _per_pair(geometry: pl.DataFrame) -> pl.DataFrame:
    """The embedding-level geometry: one row per (dataset, model)."""
    if geometry.height == 0:
        return geometry
    return geometry.unique(subset=["dataset", "model"], keep="first", maintain_order=True)


def _bfi_formula(study: Study) -> bfi_lib.BFIFormula:
    cfg = study.bfi
    return bfi_lib.BFIFormula(
        recall_bits=tuple(cfg.recall_bits),
        w_recall=cfg.w_recall,
        w_ratio=cfg.w_ratio,
        anisotropy_penalty=cfg.anisotropy_penalty,
        anisotropy_reference=cfg.anisotropy_reference,
    )


def _bfi_formula_text(study: Study) -> str:
    c = study.bfi
    bits = "/".join(map(str, c.recall_bits))
    return (
        f"BFI = clip(({c.w_recall}·R + {c.w_ratio}·Q)/({c.w_recall}+{c.w_ratio}) − P, 0, 1); "
        f"R = mean binary recall_at_10 at {bits} bits; Q = mean min(1, binary/PQ recall_at_10) "
        f"at those bits; P = {c.anisotropy_penalty}·max(0, log10(anisotropy_centred/"
        f"{c.anisotropy_reference}))"
    )


def _k3(study: Study, linear_fit: pl.DataFrame):
    ks = study.kill_switches
    return decisions.k3_predictor_failure(linear_fit, ks.k3_r2_below, ks.k3_abs_rho_below)


def _regression_md(table: pl.DataFrame) -> str:
    cols = ["target", "model", "n_points", "loocv_r2", "loocv_rmse", "spearman_rho", "status"]
    return page.markdown_table(table, cols, digits=3)
