import math

import pytest

from phase2_assets.compute.report.numbers import fmt


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.8256666, "0.8257"),
        (8.0, "8"),
        (1536.0, "1,536"),
        (123456.7, "123,457"),
        (12.345678, "12.35"),
        (0.000123456, "0.0001235"),
        (5183, "5,183"),
        (math.nan, "n/a"),
        (None, "n/a"),
        (True, "yes"),
        ("scifact", "scifact"),
    ],
)
def test_numbers_for_people(value, shown):
    assert fmt(value) == shown
