"""The X4 memo is written from its tables: hand-built tables give hand-checked sentences."""

from __future__ import annotations

import polars as pl

from phase2_assets.compute.report import memo


def _results() -> pl.DataFrame:
    rows = [  # pair a meets the GREEN bar at 256 bits (0.75, 0.75 / 0.8 >= 0.8x PQ); b does not
        ("a", "m", "binary", 256, 0.75),
        ("a", "m", "pq", 256, 0.80),
        ("a", "m", "itq", 256, 0.78),
        ("b", "m", "binary", 256, 0.40),
        ("b", "m", "pq", 256, 0.70),
        ("b", "m", "itq", 256, 0.50),
    ]
    return pl.DataFrame(
        rows, schema=["dataset", "model", "method", "bits", "recall_at_10"], orient="row"
    )


def _memo(**overrides) -> str:
    args = dict(
        study_name="s",
        config_hash="abc",
        verdict={"colour": "YELLOW", "final": True, "reasons": ["r1"]},
        switches=[
            {"name": "F3", "state": "FIRED", "fired": True, "rule": "x", "numbers": {"n": 4}}
        ],
        bfi=pl.DataFrame({"dataset": ["a", "b"], "model": ["m", "m"], "bfi": [0.71, 0.52]}),
        bfi_formula="BFI = ...",
        regression=pl.DataFrame(),
        adapter=pl.DataFrame(),
        results=_results(),
        ledger=pl.DataFrame(),
        green_bits=[256],
        green_recall=0.7,
        green_ratio=0.8,
    )
    return memo.design_memo(**{**args, **overrides})


def test_bfi_threshold_separates_the_pairs_that_meet_the_bar():
    text = _memo()
    assert "Recommended threshold: **BFI >= 0.710**" in text
    assert "the highest BFI of a pair that does not is 0.520" in text


def test_a_fired_f3_states_no_geometry_rule():
    assert "F3 fired (n 4)" in _memo() and "No geometry rule is stated" in _memo()


def test_experiments_are_ranked_by_headroom_from_the_tables():
    text = _memo()
    # Mean PQ - binary at 256 bits: ((0.80 - 0.75) + (0.70 - 0.40)) / 2 = 17.5 points;
    # ITQ over binary: ((0.78 - 0.75) + (0.50 - 0.40)) / 2 = 6.5 points.
    first = text.index("PQ leads by 17.5 recall_at_10 points on average over 2 benchmarks.")
    assert first < text.index("ITQ beat the instrument by 6.5 recall_at_10 points")
    # A gap left is headroom; a gain already shown is said to be one.
    assert "(headroom: 17.5 points)" in text and "(gain shown: 6.5 points)" in text
    assert "expected gain" not in text
    # One unit per comparison: the same 32 bytes, not "binary-256 vs PQ-32".
    assert "binary-256" not in text and "at 32 bytes per vector on every Tier-1" in text


def test_one_benchmark_is_singular_and_numbers_are_not_python_dicts():
    one = _results().filter(pl.col("dataset") == "a")
    text = _memo(
        results=one,
        switches=[
            {
                "name": "K2",
                "state": "not evaluated",
                "fired": False,
                "rule": "x",
                "numbers": {"first_gain_pp": None, "threshold_pp": 1.0},
            },
        ],
    )
    assert "over 1 benchmark." in text
    assert "K2: not evaluated (first_gain_pp n/a, threshold_pp 1)." in text
    assert "{" not in text.split("## Kill-switches")[-1].split("##")[0]


def test_empty_tables_give_a_memo_that_says_so():
    empty = pl.DataFrame()
    text = _memo(bfi=empty, results=empty, switches=[], verdict={})
    assert "X3 has not run" in text and "(no results yet)" in text


def test_the_bfi_section_states_its_spread_and_rank_agreement():
    bfi = pl.DataFrame(
        {
            "dataset": ["a", "b", "c"],
            "model": ["m"] * 3,
            "bfi": [0.71, 0.52, 0.60],
            "recall_at_10_256": [0.75, 0.40, 0.50],
        }
    )
    text = _memo(bfi=bfi)
    # spread 0.71 - 0.52; the BFI orders the pairs as recall does: rho 1.
    assert "Spread over 3 pairs: 0.19" in text and "at 256 bits 1." in text, text


def test_every_fitted_predictor_is_listed_with_its_interval():
    regression = pl.DataFrame(
        {
            "target": ["recall_at_10_within_bits", "bfi", "recall_at_10"],
            "model": ["ridge", "lasso", "ridge"],
            "n_points": [24, 6, 24],
            "loocv_r2": [0.229, -0.5, 0.91],
            "loocv_rmse": [0.01, 0.1, 0.02],
            "spearman_rho": [0.557, 0.1, 0.95],
            "r2_ci_low": [0.05, -1.2, 0.85],
            "r2_ci_high": [0.41, 0.2, 0.95],
            "status": ["fitted", "fitted", "too few points"],
            "coefficients": ["{}", "{}", "{}"],
        }
    )
    f3_clear = [{"name": "F3", "state": "clear", "fired": False, "rule": "x", "numbers": {}}]
    text = _memo(regression=regression, switches=f3_clear)
    table = text[text.index("Every fitted predictor") :]
    assert "| recall_at_10_within_bits | ridge | 24 | 0.229 |" in table, table
    assert "| bfi | lasso | 6 | -0.5 |" in table
    assert "too few points" not in table.split("## ")[0]  # only fitted rows


def test_the_corpus_size_trend_is_read_from_the_ladder():
    ladder = pl.DataFrame(
        {
            "dataset": ["a"] * 3,
            "model": ["m"] * 3,
            "method": ["binary"] * 3,
            "bits": [256] * 3,
            "corpus_docs": [1000, 10000, 100000],
            "recall_at_10": [0.9, 0.8, 0.7],
        }
    )
    text = _memo(ladder=ladder)
    section = text[text.index("## Recall against corpus size") :].split("\n## ")[0]
    assert "| a | m | binary | 256 | 1,000 | 100,000 | 0.9 | 0.7 | -0.1 |" in section, section
    assert "No corpus had more than one rung" in _memo(ladder=ladder.head(1))
