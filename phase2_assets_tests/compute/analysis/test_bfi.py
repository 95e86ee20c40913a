"""The Binary Friendliness Index: every clause of the documented formula, checked by hand."""

from __future__ import annotations

import math

import polars as pl
import pytest

from phase2_assets.compute.analysis import bfi as bfi_mod
from phase2_assets.compute.analysis.bfi import BFIFormula, bfi_summary, compute_bfi


def _results(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["dataset", "model", "method", "bits", "recall_at_10"], orient="row"
    )


def _pair(dataset: str, b256: float, b512: float, pq256=None, pq512=None, model="m1") -> list:
    rows = [(dataset, model, "binary", 256, b256), (dataset, model, "binary", 512, b512)]
    rows += [(dataset, model, "pq", 256, pq256)] if pq256 is not None else []
    rows += [(dataset, model, "pq", 512, pq512)] if pq512 is not None else []
    return rows


TWO_PAIRS = _results(
    _pair("scifact", 0.60, 0.80, 0.80, 0.70)
    + _pair("nfcorpus", 0.40, 0.50, 0.80, 1.00)
    + [("scifact", "m1", "float32", 6144, 1.0), ("scifact", "m1", "binary", 64, 0.1)]
)


def _by_dataset(table: pl.DataFrame) -> dict[str, dict]:
    return {r["dataset"]: r for r in table.iter_rows(named=True)}


def test_two_pairs_by_hand_default_weights():
    out = compute_bfi(TWO_PAIRS, BFIFormula())
    assert out.columns == [
        "dataset",
        "model",
        "bfi",
        "recall_component",
        "ratio_component",
        "anisotropy_penalty_value",
        "recall_at_10_256",
        "note",
    ]
    assert out["dataset"].to_list() == ["nfcorpus", "scifact"]  # sorted
    rows = _by_dataset(out)
    # scifact: R = (0.60 + 0.80) / 2 = 0.70
    #          Q = (min(1, 0.60 / 0.80) + min(1, 0.80 / 0.70)) / 2 = (0.75 + 1) / 2 = 0.875
    #          BFI = (0.5 * 0.70 + 0.5 * 0.875) / 1 = 0.7875   (the 64-bit row plays no part)
    assert rows["scifact"]["recall_component"] == pytest.approx(0.70)
    assert rows["scifact"]["ratio_component"] == pytest.approx(0.875)
    assert rows["scifact"]["bfi"] == pytest.approx(0.7875)
    assert rows["scifact"]["recall_at_10_256"] == pytest.approx(0.60)
    # nfcorpus: R = 0.45, Q = (0.40 / 0.80 + 0.50 / 1.00) / 2 = 0.5, BFI = (0.45 + 0.5) / 2 = 0.475
    assert rows["nfcorpus"]["bfi"] == pytest.approx(0.475)
    assert rows["nfcorpus"]["anisotropy_penalty_value"] == 0.0
    assert out["note"].to_list() == ["", ""]


def test_weights_are_normalised_by_their_sum():
    out = _by_dataset(compute_bfi(TWO_PAIRS, BFIFormula(w_recall=1.0, w_ratio=3.0)))
    # scifact: (1 * 0.70 + 3 * 0.875) / 4 = 0.83125 ; nfcorpus: (0.45 + 1.5) / 4 = 0.4875
    assert out["scifact"]["bfi"] == pytest.approx(0.83125)
    assert out["nfcorpus"]["bfi"] == pytest.approx(0.4875)


def test_ratio_is_capped_at_one_when_binary_beats_pq():
    out = compute_bfi(_results(_pair("fiqa", 0.90, 0.90, 0.60, 0.45)), BFIFormula())
    # uncapped the ratios would be 1.5 and 2.0 (Q = 1.75, BFI = 1.325 -> clipped to 1)
    assert out["ratio_component"][0] == 1.0
    assert out["bfi"][0] == pytest.approx((0.90 + 1.0) / 2)
    assert out["note"][0] == ""  # the cap is part of Q, not a clip


def test_pq_missing_at_one_bit_uses_the_other():
    out = compute_bfi(_results(_pair("fiqa", 0.40, 0.60, pq256=0.80)), BFIFormula())
    # Q from 256 only: 0.40 / 0.80 = 0.5 ; R = 0.5 ; BFI = 0.5
    assert out["ratio_component"][0] == pytest.approx(0.5)
    assert out["bfi"][0] == pytest.approx(0.5)
    assert "512" in out["note"][0]


def test_no_pq_rows_uses_recall_only_with_weights_renormalised():
    out = compute_bfi(_results(_pair("fiqa", 0.40, 0.60)), BFIFormula(w_recall=1.0, w_ratio=3.0))
    assert math.isnan(out["ratio_component"][0])
    assert out["bfi"][0] == pytest.approx(0.5)  # R itself, not 1 * R / 4
    assert "R only" in out["note"][0]


def test_pair_without_every_required_binary_row_is_left_out():
    rows = _pair("scifact", 0.6, 0.8, 0.8, 0.7) + [("fiqa", "m1", "binary", 256, 0.5)]
    out = compute_bfi(_results(rows), BFIFormula())
    assert out["dataset"].to_list() == ["scifact"]
    only_256 = compute_bfi(_results(rows), BFIFormula(recall_bits=[256]))  # a list, as from YAML
    assert only_256["dataset"].to_list() == ["fiqa", "scifact"]


def test_recall_at_256_is_nan_when_not_measured():
    rows = [("fiqa", "m1", "binary", 512, 0.7), ("fiqa", "m1", "pq", 512, 0.7)]
    out = compute_bfi(_results(rows), BFIFormula(recall_bits=(512,)))
    assert math.isnan(out["recall_at_10_256"][0])
    assert out["bfi"][0] == pytest.approx(0.85)


def _geometry(values: dict[str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset": list(values),
            "model": ["m1"] * len(values),
            "anisotropy_centred": list(values.values()),
        }
    )


def test_anisotropy_penalty_only_above_the_reference():
    rows = _results(
        _pair("a", 0.6, 0.8, 0.8, 0.7) + _pair("b", 0.6, 0.8, 0.8, 0.7) + _pair("c", 0.6, 0.8)
    )
    formula = BFIFormula(anisotropy_penalty=0.2, anisotropy_reference=10.0)
    out = _by_dataset(compute_bfi(rows, formula, _geometry({"a": 100.0, "b": 10.0})))
    # a: P = 0.2 * log10(100 / 10) = 0.2 -> BFI = 0.7875 - 0.2
    assert out["a"]["anisotropy_penalty_value"] == pytest.approx(0.2)
    assert out["a"]["bfi"] == pytest.approx(0.5875)
    # b: exactly at the reference -> no penalty
    assert out["b"]["anisotropy_penalty_value"] == 0.0
    assert out["b"]["bfi"] == pytest.approx(0.7875)
    # c: no geometry row -> no penalty, and the note says so
    assert out["c"]["anisotropy_penalty_value"] == 0.0
    assert "no geometry" in out["c"]["note"]
    # below the reference the log is negative: still no bonus
    below = compute_bfi(rows, formula, _geometry({"a": 2.0}))
    assert below["anisotropy_penalty_value"][0] == 0.0
    # without a geometry table the penalty is 0 whatever the formula
    assert compute_bfi(rows, formula)["anisotropy_penalty_value"].to_list() == [0.0] * 3


def test_penalty_helper_by_hand():
    formula = BFIFormula(anisotropy_penalty=0.5, anisotropy_reference=4.0)
    assert bfi_mod.penalty(formula, 40.0) == pytest.approx(0.5)
    assert bfi_mod.penalty(formula, 4.0) == 0.0
    assert bfi_mod.penalty(formula, None) == 0.0


def test_bfi_is_clipped_to_the_unit_interval():
    rows = _results(_pair("a", 0.2, 0.2, 0.8, 0.8) + _pair("b", 1.0, 1.0, 1.0, 1.0))
    formula = BFIFormula(anisotropy_penalty=1.0, anisotropy_reference=1.0)
    out = _by_dataset(compute_bfi(rows, formula, _geometry({"a": 100.0, "b": 0.5})))
    # a: (0.2 + 0.25) / 2 - 1 * log10(100) = 0.225 - 2 = -1.775 -> 0
    assert out["a"]["bfi"] == 0.0
    assert out["a"]["anisotropy_penalty_value"] == pytest.approx(2.0)
    assert "clipped" in out["a"]["note"]
    assert out["b"]["bfi"] == 1.0  # perfect binary: the top of the scale, not above it
    assert out["b"]["note"] == ""


def test_formula_validation():
    assert BFIFormula(recall_bits=[128, 256]).recall_bits == (128, 256)
    with pytest.raises(ValueError):
        BFIFormula(recall_bits=())
    with pytest.raises(ValueError):
        BFIFormula(w_recall=0.0, w_ratio=0.0)


def test_duplicate_result_rows_are_an_error():
    rows = _pair("a", 0.6, 0.8) + [("a", "m1", "binary", 256, 0.61)]
    with pytest.raises(ValueError, match="more than one binary row"):
        compute_bfi(_results(rows), BFIFormula())


# ---- bfi_summary ---------------------------------------------------------------------------------


def _scores(bfi: list[float], recall_256: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"bfi": bfi, "recall_at_10_256": recall_256})


def test_summary_by_hand():
    out = bfi_summary(_scores([0.2, 0.5, 0.6], [0.3, 0.4, 0.7]))
    assert out["n_pairs"] == 3
    assert out["spread"] == pytest.approx(0.4)
    # mean 0.4333; squared deviations 0.05444 + 0.00444 + 0.02778 = 0.08667; / (3 - 1)
    assert out["std"] == pytest.approx(math.sqrt(0.13 / 3))
    assert out["spearman_vs_recall_256"] == pytest.approx(1.0)
    assert out["monotonic_with_recall_256"] is True
    assert out["band"] == "wide"


def test_summary_detects_a_ranking_different_from_recall():
    out = bfi_summary(_scores([0.2, 0.5, 0.45], [0.3, 0.4, 0.7]))
    assert out["monotonic_with_recall_256"] is False
    assert out["spearman_vs_recall_256"] == pytest.approx(0.5)


def test_summary_allows_ties_in_the_ranking():
    out = bfi_summary(_scores([0.5, 0.5, 0.6], [0.3, 0.4, 0.5]))
    assert out["monotonic_with_recall_256"] is True


@pytest.mark.parametrize(
    ("values", "band"),
    [
        ([0.4, 0.7], "wide"),  # 0.7 - 0.4 = 0.29999999999999993 in floating point: still 0.3
        ([0.4, 0.55], "mild"),
        ([0.4, 0.5], "mild"),  # exactly 0.1
        ([0.4, 0.47], "narrow"),
        ([0.4, 0.45], "narrow"),  # exactly 0.05 is not "< 0.05"
        ([0.4, 0.42], "collapsed"),
        ([0.4], "collapsed"),  # one pair: spread 0
    ],
)
def test_summary_bands(values, band):
    assert bfi_summary(_scores(values, values))["band"] == band


def test_summary_spearman_needs_three_pairs():
    out = bfi_summary(_scores([0.2, 0.6], [0.3, 0.7]))
    assert math.isnan(out["spearman_vs_recall_256"])
    assert out["spread"] == pytest.approx(0.4)


def test_summary_of_nothing():
    out = bfi_summary(compute_bfi(_results([("a", "m1", "pq", 256, 0.5)]), BFIFormula()))
    assert out["n_pairs"] == 0
    assert math.isnan(out["spread"]) and math.isnan(out["std"])
    assert out["band"] == "undefined"
