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
