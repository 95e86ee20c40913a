"""Every method keeps a marker of its own on the frontier."""

from phase2_assets.compute.methods import METHODS
from phase2_assets.compute.report.figures import _style


def test_every_registered_method_has_a_distinct_style():
    styles = [(_style(m)["color"], _style(m)["symbol"]) for m in METHODS]
    assert len(set(styles)) == len(METHODS) >= 19
