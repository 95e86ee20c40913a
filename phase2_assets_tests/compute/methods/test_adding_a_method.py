"""docs/extending/a-method.md's recipe, run as written: the module dropped into the methods
folder is registered with nothing else edited, its row reaches the generated methods table, and
its rows reach the next run's results table."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from phase2_assets.compute import methods
from phase2_assets.compute.methods import METHODS, Plan, Settings, instrument, table
from phase2_assets.testing import recipes
from phase2_assets.testing.recipes import doc_block


def recipe() -> str:
    return doc_block("extending/a-method.md", "docs-method")


@pytest.fixture
def dropped_in(tmp_path):
    """``my_method.py`` in a folder that is part of the methods package, then discovered."""
    with recipes.dropped_in(
        methods, "my_method", recipe(), tmp_path / "methods", METHODS, "my_method"
    ) as imported:
        yield imported


def test_a_dropped_in_module_is_registered_and_works(dropped_in):
    assert "my_method" in dropped_in
    method = METHODS["my_method"]
    assert method.applies(32, 64, Plan(frozenset({64}))) and not method.applies(32, 128, Plan())
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((50, 32)).astype(np.float32)
    settings = Settings(method_params={"my_method": {"seed_offset": 3}})
    built = method.build(corpus, 64, settings)
    np.testing.assert_array_equal(built.index, instrument.encode(corpus, 64, 42 + 3))
    ids = method.search(built, corpus[:5], 1, 64, settings)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]  # each vector finds itself first


def test_a_dropped_in_module_is_a_row_of_the_generated_table(dropped_in):
    """No table to edit by hand: the command's next page has the method's row and parameter,
    and the row's formulas hold for the method."""
    page = table.render()
    assert (
        "| `my_method` | each planned code length (b ≤ 8·d) | The instrument with another "
        "projection seed, for the UI. | b/8 | projection 4·b·d | the instrument, reseeded |"
    ) in page
    assert "| `methods.my_method.seed_offset` | 1 | added to seeds.projection |" in page
    assert table.check(METHODS["my_method"]) == []


@pytest.mark.slow  # a whole tiny study, twice
def test_its_rows_reach_the_results_table_of_the_next_run(
    dropped_in, tmp_path, tiny_beir, tiny_model
):
    from phase2_assets.testing import graph as gh
    from phase2_assets.testing.tiny import write_tiny_study

    path = write_tiny_study(
        tmp_path / "s.yaml",
        tiny_beir,
        tiny_model,
        methods={"extra": ["my_method"], "my_method": {"seed_offset": 2}},
    )
    study, defs = gh.build(path, tmp_path / "data")
    assert all(r.success for r in gh.materialize_study(study, defs))
    table = pl.read_parquet(tmp_path / "data" / "results" / "retrieval_metrics.parquet")
    mine = table.filter(pl.col("method") == "my_method")
    assert sorted(mine["bits"].to_list()) == [8, 16, 32, 64]
    assert mine["recall_at_10"].min() > 0


def test_a_method_from_another_installed_package_is_registered(tmp_path, monkeypatch):
    """The recipe (docs/extending/a-method.md) shipped as a package of its own: an installed
    distribution (its dist-info on sys.path, as pip leaves it) with an entry point in
    phase2_assets.methods."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "their_scheme.py").write_text(recipe().replace('"my_method"', '"their_scheme"'))
    info = site / "their_scheme-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: their-scheme\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[phase2_assets.methods]\ntheir_scheme = their_scheme\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        assert "their_scheme" in methods.plugins()
        method = METHODS["their_scheme"]
        corpus = np.random.default_rng(1).standard_normal((20, 32)).astype(np.float32)
        built = method.build(corpus, 64, Settings())
        assert method.search(built, corpus[:3], 1, 64, Settings())[:, 0].tolist() == [0, 1, 2]
    finally:
        METHODS.pop("their_scheme", None)
        sys.modules.pop("their_scheme", None)


def test_a_broken_plugin_names_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    info = site / "broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[phase2_assets.methods]\nbroken = no_such_module\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ImportError, match=r"method plugin 'broken' = 'no_such_module'"):
        methods.plugins()


def _install(site: Path, module: str, source: str, entry: str) -> None:
    """A distribution as pip leaves it: the module and a dist-info with one entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[phase2_assets.methods]\n{entry}\n")


UNREGISTERED_PQ = """
from phase2_assets.compute.methods.base import Method


class TheirPQ(Method):
    name = "pq"
    budget = "bits"
    follows = "pq"
    family = "pq"
    description = "someone else's PQ"
"""


def test_a_plugin_class_named_like_a_built_in_is_an_error_naming_both_modules(
    tmp_path, monkeypatch
):
    """Before: an entry point naming a Method subclass called 'pq' was silently ignored."""
    _install(tmp_path / "site", "their_pq", UNREGISTERED_PQ, "their_pq = their_pq:TheirPQ")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    builtin = METHODS["pq"]
    try:
        with pytest.raises(ImportError) as exc:
            methods.plugins()
    finally:
        sys.modules.pop("their_pq", None)
    message = str(exc.value)
    assert "method plugin 'their_pq' = 'their_pq:TheirPQ'" in message
    assert "package 'their_pq'" in message
    assert "method 'pq' is defined twice: by phase2_assets.compute.methods.pq (" in message
    assert "and by their_pq (" in message and "their_pq.py" in message
    assert METHODS["pq"] is builtin  # the built-in stays


def test_a_plugin_module_registering_a_built_in_name_is_an_error_naming_both_modules(
    tmp_path, monkeypatch
):
    """Before: "could not be loaded: ValueError: method 'pq' registered twice", naming neither
    the plugin's module nor the built-in's."""
    source = recipe().replace('"my_method"', '"pq"')
    _install(tmp_path / "site", "pq_again", source, "pq_again = pq_again")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        with pytest.raises(ImportError) as exc:
            methods.plugins()
    finally:
        sys.modules.pop("pq_again", None)
    message = str(exc.value)
    assert message.startswith("method plugin 'pq_again' = 'pq_again'")
    assert "method 'pq' is defined twice: by phase2_assets.compute.methods.pq (" in message
    assert "and by pq_again (" in message and "pq_again.py" in message


def test_a_dropped_in_module_named_like_a_built_in_is_an_error_naming_both_modules(
    tmp_path, monkeypatch
):
    """Before: "method 'pq' registered twice", naming neither module."""
    folder = tmp_path / "methods"
    folder.mkdir()
    (folder / "zz_pq.py").write_text(recipe().replace('"my_method"', '"pq"'))
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(folder)])
    try:
        with pytest.raises(ValueError) as exc:
            methods.discover(methods.__path__)
    finally:
        sys.modules.pop("phase2_assets.compute.methods.zz_pq", None)
    message = str(exc.value)
    assert "method 'pq' is defined twice: by phase2_assets.compute.methods.pq (" in message
    assert f"and by phase2_assets.compute.methods.zz_pq ({folder / 'zz_pq.py'})" in message
