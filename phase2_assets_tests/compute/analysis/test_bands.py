"""Each experiment's band rule on hand-made tables: every band reachable, the plan's boundaries."""

import math

import polars as pl
import pytest

from phase2_assets.compute.analysis import bands
from phase2_assets.compute.analysis.decisions import GEOMETRY_TARGET, Switch
from phase2_assets.config.study import BandsConfig

T = BandsConfig()
F3 = (0.3, 0.1)
EMPTY = pl.DataFrame()


def results(rows: list[tuple], n_docs: int = 5000) -> pl.DataFrame:
    """(dataset, model, method, bits, recall_at_10) rows."""
    return pl.DataFrame(
        [
            {"dataset": d, "model": m, "method": me, "bits": b, "recall_at_10": r, "n_docs": n_docs}
            for d, m, me, b, r in rows
        ]
    )


def grid(method: str, bits: list[int], recall: dict[tuple[str, str], float]) -> list[tuple]:
    return [(d, m, method, b, r) for (d, m), r in recall.items() for b in bits]


PAIRS3x2 = [(d, m) for d in ("a", "b", "c") for m in ("x", "y")]


# ---- E1 ----------------------------------------------------------------------------------


def ledger(gpu: float, spent: float | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {"experiment": ["E1"], "gpu_hours": [gpu], "spent_gpu_hours": [spent or gpu]}
    )


def floats(pairs) -> pl.DataFrame:
    return results([(d, m, "float32", 12288, 1.0) for d, m in pairs])


PLANNED = {"tier1": {("a", "x"), ("b", "x")}, "tier2": {("c", "y")}}


@pytest.mark.parametrize(
    "pairs, gpu, spent, band",
    [
        ([("a", "x"), ("b", "x"), ("c", "y")], 20.0, 20.0, bands.HOPE),  # 20 h is within Hope
        ([("a", "x"), ("b", "x"), ("c", "y")], 20.01, 20.01, bands.USEFUL),
        ([("a", "x"), ("b", "x"), ("c", "y")], 10.0, 12.6, bands.USEFUL),  # 26% reruns
        ([("a", "x"), ("b", "x")], 5.0, 5.0, bands.USEFUL),  # Tier-2 partly covered
        ([("a", "x"), ("b", "x"), ("c", "y")], 35.0, 35.0, bands.USEFUL),
        ([("a", "x"), ("b", "x"), ("c", "y")], 35.5, 35.5, bands.NEGATIVE),
        ([("a", "x")], 1.0, 1.0, bands.NOT_JUDGED),  # core still running
    ],
)
def test_e1_bands(pairs, gpu, spent, band):
    got = bands.e1(floats(pairs), ledger(gpu, spent), PLANNED, T)
    assert got.band == band, got


def test_e1_on_cpu_is_zero_gpu_hours_and_not_judged_without_embeddings():
    assert bands.e1(floats([("a", "x"), ("b", "x"), ("c", "y")]), None, PLANNED, T).band == (
        bands.HOPE
    )
    assert bands.e1(EMPTY, None, PLANNED, T).band == bands.NOT_JUDGED


# ---- E2 ----------------------------------------------------------------------------------


def checks(failed: dict[str, int], partitions: int = 4) -> pl.DataFrame:
    rows = []
    for check in ("self_hamming_zero", "reproducible", "bit_balance", "hamming_tracks_angle"):
        for p in range(partitions):
            rows.append({"check": check, "partition": f"p{p}", "passed": p >= failed.get(check, 0)})
    return pl.DataFrame(rows)


RISING = results(grid("binary", [64], {("a", "x"): 0.3}) + grid("binary", [128], {("a", "x"): 0.5}))
FALLING = results(
    grid("binary", [64], {("a", "x"): 0.5}) + grid("binary", [128], {("a", "x"): 0.4})
)


def test_e2_bands():
    assert bands.e2(RISING, checks({})).band == bands.HOPE
    assert bands.e2(RISING, checks({"bit_balance": 1})).band == bands.USEFUL
    assert bands.e2(FALLING, checks({})).band == bands.USEFUL
    assert bands.e2(RISING, checks({"reproducible": 1})).band == bands.NEGATIVE
    assert bands.e2(RISING, checks({"self_hamming_zero": 2})).band == bands.NEGATIVE
    assert bands.e2(RISING, pl.DataFrame(schema={"check": pl.String})).band == bands.NOT_JUDGED


# ---- E3 / E6 -------------------------------------------------------------------------------


def pq(recall_256: dict, recall_512: dict) -> pl.DataFrame:
    return results(grid("pq", [256], recall_256) + grid("pq", [512], recall_512))


def test_e3_hope_needs_every_model_on_two_thirds_of_datasets():
    good = {p: 0.8 for p in PAIRS3x2}  # exactly the bar: Hope
    assert bands.e3(pq(good, good), T).band == bands.HOPE
    one_weak = {**good, ("a", "x"): 0.79, ("b", "y"): 0.79}  # 1 of 3 datasets left
    assert bands.e3(pq(one_weak, one_weak), T).band == bands.USEFUL
    two_of_three = {**good, ("a", "x"): 0.79}
    assert bands.e3(pq(two_of_three, two_of_three), T).band == bands.HOPE


def test_e3_negative_below_0_6_at_64_bytes_everywhere():
    weak = {p: 0.59 for p in PAIRS3x2}
    assert bands.e3(pq(weak, weak), T).band == bands.NEGATIVE
    at_bar = {**weak, ("c", "y"): 0.6}
    assert bands.e3(pq(weak, at_bar), T).band == bands.USEFUL
    assert bands.e3(EMPTY, T).band == bands.NOT_JUDGED


def test_e6_bands():
    strong = {p: 0.8 for p in PAIRS3x2}
    half = {p: (0.8 if i < 3 else 0.75) for i, p in enumerate(PAIRS3x2)}  # 3 of 6: not most
    assert bands.e6(pq(strong, strong), T).band == bands.HOPE
    assert bands.e6(pq(half, half), T).band == bands.USEFUL
    weak = {p: (0.69 if i < 4 else 0.9) for i, p in enumerate(PAIRS3x2)}  # 4 of 6 below 0.7
    assert bands.e6(pq(weak, weak), T).band == bands.NEGATIVE
    weak_half = {p: (0.69 if i < 3 else 0.75) for i, p in enumerate(PAIRS3x2)}
    assert bands.e6(pq(weak_half, weak_half), T).band == bands.USEFUL
    assert bands.e6(EMPTY, T).band == bands.NOT_JUDGED


# ---- E4 ------------------------------------------------------------------------------------


def truth(passed: list[bool]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"check": "self_consistent", "partition": f"p{i}", "passed": ok}
            for i, ok in enumerate(passed)
        ]
    )


def test_e4_bands_keep_no_measured_hours():
    assert "cpu_hours" not in bands.e4(EMPTY, truth([True]), 0.0123, T).numbers
    assert bands.e4(EMPTY, truth([True]), 0.0123, T).numbers["within_cpu_hours"] is True


def test_e4_bands():
    assert bands.e4(EMPTY, truth([True, True]), 50.0, T).band == bands.HOPE
    assert bands.e4(EMPTY, truth([True, True]), 50.5, T).band == bands.USEFUL
    assert bands.e4(EMPTY, truth([True, False]), 1.0, T).band == bands.NEGATIVE
    assert bands.e4(EMPTY, truth([]), 1.0, T).band == bands.NOT_JUDGED


# ---- E5 ------------------------------------------------------------------------------------


def switch(name: str, fired: bool) -> Switch:
    return Switch(name, "rule", "blocks", True, fired)


def binary_and_pq(binary_recall: dict, pq_recall: float = 0.9) -> pl.DataFrame:
    return results(
        grid("binary", [256, 512], binary_recall)
        + grid("pq", [256, 512], {p: pq_recall for p in binary_recall})
    )


def test_e5_hope_two_of_three_datasets_two_of_three_models_and_ratio():
    models3 = [(d, m) for d in ("a", "b", "c") for m in ("x", "y", "z")]
    # a and b: 2 of 3 models at 0.70; c: none. 0.72 / 0.9 = 0.8 ratio exactly.
    recall = {(d, m): (0.72 if d != "c" and m != "z" else 0.5) for d, m in models3}
    clear = [switch("F1", False), switch("F2", False)]
    assert bands.e5(binary_and_pq(recall), clear, T).band == bands.HOPE
    # one model of b drops below 0.70: only dataset a qualifies
    worse = {**recall, ("b", "y"): 0.69}
    assert bands.e5(binary_and_pq(worse), clear, T).band == bands.USEFUL
    # recall is there, but the ratio to PQ (0.72 / 0.95) stays below 0.8
    assert bands.e5(binary_and_pq(recall, 0.95), clear, T).band == bands.USEFUL


def test_e5_negative_is_f1_or_f2():
    recall = {p: 0.3 for p in PAIRS3x2}
    for fired in ("F1", "F2"):
        sw = [switch("F1", fired == "F1"), switch("F2", fired == "F2")]
        got = bands.e5(binary_and_pq(recall), sw, T)
        assert got.band == bands.NEGATIVE and fired in got.reading
    assert bands.e5(EMPTY, [], T).band == bands.NOT_JUDGED


# ---- E7 ------------------------------------------------------------------------------------


def geometry(aniso: list[float], outliers: list[float], cosine: list[float] | None = None):
    n = len(aniso)
    return pl.DataFrame(
        {
            "dataset": [f"d{i}" for i in range(n)],
            "model": ["m"] * n,
            "anisotropy_centred": [float(a) for a in aniso],
            "outlier_fraction": [float(o) for o in outliers],
            "mean_pairwise_cosine": cosine or [0.2] * n,
        }
    )


def recall_256(values: list[float]) -> pl.DataFrame:
    return results([(f"d{i}", "m", "binary", 256, r) for i, r in enumerate(values)])


def test_e7_bands():
    falling = recall_256([0.8, 0.7, 0.6])  # more anisotropy, lower recall: aligned (rho -1)
    assert bands.e7(geometry([5, 8, 12], [0, 0, 0]), falling, T).band == bands.HOPE
    assert bands.e7(geometry([5, 6, 7], [0, 0, 0.01]), falling, T).band == bands.HOPE
    # pathologies, but recall rises with anisotropy: not aligned
    assert bands.e7(geometry([5, 8, 12], [0, 0, 0]), recall_256([0.6, 0.7, 0.8]), T).band == (
        bands.USEFUL
    )
    # no pathology (anisotropy < 10, no outliers), aligned
    assert bands.e7(geometry([5, 6, 7], [0, 0, 0]), falling, T).band == bands.USEFUL
    # no usable variation: every diagnostic within 5% of its mean
    flat = geometry([10.0, 10.1, 10.2], [0.02, 0.02, 0.02], [0.2, 0.2, 0.2])
    assert bands.e7(flat, falling, T).band == bands.NEGATIVE
    assert bands.e7(geometry([5, math.nan, 7], [0, 0, 0]), falling, T).band == bands.NEGATIVE
    assert bands.e7(geometry([5], [0]), falling, T).band == bands.NOT_JUDGED


# ---- E8 / X2 -------------------------------------------------------------------------------


def regression(r2: float, rho: float, target: str = GEOMETRY_TARGET) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "target": [target],
            "model": ["ridge"],
            "n_points": [24],
            "loocv_r2": [r2],
            "spearman_rho": [rho],
            "r2_ci_low": [r2 - 0.1],
            "r2_ci_high": [r2 + 0.1],
            "status": ["fitted"],
        }
    )


@pytest.mark.parametrize(
    "r2, rho, band",
    [
        (0.31, 0.51, bands.HOPE),
        (0.30, 0.60, bands.USEFUL),  # R2 must exceed 0.3
        (0.40, 0.50, bands.USEFUL),  # rho must exceed 0.5
        (0.15, 0.2, bands.USEFUL),
        (0.05, 0.35, bands.USEFUL),  # rho >= 0.3: not F3's condition
        (0.09, 0.29, bands.NEGATIVE),
        (-0.5, -0.4, bands.NEGATIVE),  # anti-correlated predictions count as rho 0
    ],
)
def test_e8_bands(r2, rho, band):
    assert bands.e8(regression(r2, rho), T, F3).band == band


def test_x2_reads_the_bfi_target_too_and_not_judged_without_a_fit():
    assert bands.x2(regression(0.5, 0.7, "bfi"), T, F3).band == bands.HOPE
    assert bands.e8(regression(0.5, 0.7, "bfi"), T, F3).band == bands.NOT_JUDGED
    unfitted = regression(0.5, 0.7).with_columns(status=pl.lit("too few points"))
    assert bands.x2(unfitted, T, F3).band == bands.NOT_JUDGED


# ---- X1 ------------------------------------------------------------------------------------


def bfi(values: list[float], recall: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset": [f"d{i}" for i in range(len(values))],
            "model": ["m"] * len(values),
            "bfi": values,
            "recall_at_10_256": recall,
        }
    )


def test_x1_bands():
    assert bands.x1(bfi([0.4, 0.55, 0.7], [0.5, 0.6, 0.7]), T).band == bands.HOPE  # spread 0.3
    assert bands.x1(bfi([0.4, 0.55, 0.69], [0.5, 0.6, 0.7]), T).band == bands.USEFUL
    # wide, but the ranking only partly follows recall (rho 0.5)
    assert bands.x1(bfi([0.4, 0.7, 0.5], [0.5, 0.6, 0.7]), T).band == bands.USEFUL
    assert bands.x1(bfi([0.5, 0.52, 0.54], [0.5, 0.6, 0.7]), T).band == bands.NEGATIVE
    assert bands.x1(bfi([0.7, 0.5, 0.3], [0.5, 0.6, 0.7]), T).band == bands.NEGATIVE  # contradicts
    assert bands.x1(bfi([0.5], [0.5]), T).band == bands.NOT_JUDGED


# ---- X3 ------------------------------------------------------------------------------------


def adapter(gains: list[float], gaps: list[float], bits: int = 256) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "adapter": [f"c{i}" for i in range(len(gains))],
            "bits": [bits] * len(gains),
            "points_gained": gains,
            "gap_closed": gaps,
        }
    )


@pytest.mark.parametrize(
    "gains, gaps, band",
    [
        ([5.0], [0.2], bands.HOPE),
        ([1.0, 5.0], [0.05, 0.25], bands.HOPE),
        ([5.0], [0.19], bands.USEFUL),  # both are needed for Hope, on one configuration
        ([4.0], [0.3], bands.USEFUL),
        ([2.0], [0.0], bands.USEFUL),  # 2 pp is not below 2 pp
        ([0.5], [0.1], bands.USEFUL),
        ([1.9], [0.09], bands.NEGATIVE),
        ([-3.0, 1.0], [-0.2, 0.05], bands.NEGATIVE),
    ],
)
def test_x3_bands(gains, gaps, band):
    assert bands.x3(adapter(gains, gaps), T).band == band


def test_x3_a_gap_that_could_not_be_measured_meets_no_bar():
    assert bands.x3(adapter([5.8], [math.nan]), T).band == bands.USEFUL
    assert bands.x3(adapter([1.0], [math.nan]), T).band == bands.NEGATIVE


def test_x3_not_judged_without_the_adapter():
    assert bands.x3(None, T).band == bands.NOT_JUDGED


# ---- X4 ------------------------------------------------------------------------------------


def test_x4_bands():
    useful = bands.Band("X1", bands.USEFUL, "")
    negative = bands.Band("E8", bands.NEGATIVE, "")
    unjudged = bands.Band("E8", bands.NOT_JUDGED, "")
    rows = adapter([3.0], [0.1])
    assert bands.x4(0.6, rows, useful, unjudged).band == bands.HOPE
    assert bands.x4(None, rows, useful, unjudged).band == bands.USEFUL
    assert bands.x4(0.6, None, useful, negative).band == bands.USEFUL
    assert bands.x4(None, None, useful, unjudged).band == bands.NEGATIVE
    assert bands.x4(0.6, rows, bands.Band("X1", bands.NEGATIVE, ""), unjudged).band == bands.USEFUL
    assert bands.x4(None, None, bands.Band("X1", bands.NOT_JUDGED, ""), unjudged).band == (
        bands.NOT_JUDGED
    )


# ---- scale -----------------------------------------------------------------------------------


def all_bands(table: pl.DataFrame) -> list[bands.Band]:
    return bands.evaluate(
        results=table,
        regression=EMPTY,
        bfi=EMPTY,
        geometry=EMPTY,
        adapter=None,
        ledger=None,
        code_checks=EMPTY,
        truth_checks=EMPTY,
        truth_cpu_hours=None,
        switches=[],
        planned_pairs={"tier1": {("a", "x")}},
        bfi_threshold=None,
        thresholds=T,
        f3=F3,
    )


def test_every_judged_band_names_the_corpus_sizes_and_small_ones_say_only():
    small = pl.concat(
        [
            results([("a", "x", "float32", 12288, 1.0), ("a", "x", "pq", 512, 0.9)], 1033),
            results([("b", "x", "float32", 12288, 1.0), ("b", "x", "pq", 512, 0.9)], 5183),
        ]
    )
    found = {b.experiment: b for b in all_bands(small)}
    assert [b.experiment for b in found.values()] == list(bands.EXPERIMENTS)
    assert found["E3"].scale_note() == "on collections of 1K–5K passages only"
    assert found["E3"].small_scale and found["E1"].small_scale
    assert found["E2"].scale_note() == ""  # not judged: no scale claimed
    large = results([("a", "x", "float32", 12288, 1.0), ("a", "x", "pq", 512, 0.9)], 500_000)
    big = {b.experiment: b for b in all_bands(large)}
    assert big["E3"].scale_note() == "on collections of 500K passages"
    assert not big["E3"].small_scale
    assert bands.table([b.to_dict() for b in found.values()]).height == 12
