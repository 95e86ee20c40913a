"""docs/methods.md is generated from the method classes: current, complete, and true to the
methods' own ``memory`` and ``fits``."""

from __future__ import annotations

from pathlib import Path

import pytest

from phase2_assets.compute.methods import METHODS, table

PAGE = Path(__file__).resolve().parents[3] / "docs" / "methods.md"


def test_the_methods_page_is_current():
    page = PAGE.read_text(encoding="utf-8")
    assert table.rewrite(page) == page, (
        f"{PAGE} is stale: run `{table.COMMAND}` from the repository root and commit the page"
    )


def test_every_built_in_method_is_a_row_of_the_page():
    page = PAGE.read_text(encoding="utf-8")
    assert {m.name for m in table.built_in()} == {
        n for n, m in METHODS.items() if type(m).__module__.startswith(table.PACKAGE + ".")
    }
    for m in table.built_in():
        assert f"| `{m.name}`" in page


@pytest.mark.parametrize("name", sorted(m.name for m in table.built_in()))
def test_each_method_declares_its_own_row(name):
    """Its own peer (a subclass does not inherit its parent's), and its code bytes."""
    cls = type(METHODS[name])
    assert "peer" in vars(cls) and cls.peer, f"{cls.__module__}.{cls.__name__} declares no peer"
    assert cls.code_bytes, f"{cls.__module__}.{cls.__name__} declares no code_bytes"


@pytest.mark.parametrize("name", sorted(m.name for m in table.built_in()))
def test_each_rows_formulas_are_the_methods_memory_and_fits(name):
    assert table.check(METHODS[name]) == []


def test_a_wrong_formula_is_named_with_where_it_fails(monkeypatch):
    pq = type(METHODS["pq"])
    monkeypatch.setattr(pq, "code_bytes", "b/4")
    monkeypatch.setattr(pq, "fits_when", "b ≤ d")
    wrong = table.check(METHODS["pq"])
    assert "pq: code_bytes 'b/4' is 2.0 at b=8, d=32; memory() says 1.0" in wrong
    assert "pq: fits_when 'b ≤ d' is True at b=24, d=32" in wrong


def test_formulas_read_as_written():
    assert table.evaluate("⌈d/8⌉", None, 100) == 13
    assert table.evaluate("4·(d·b + d + b²)", 2, 3) == 4 * (6 + 3 + 4)
    assert table.evaluate("32 divides b, b/32 ≤ d", 64, 2) is True
    assert table.evaluate("32 divides b, b/32 ≤ d", 48, 2) is False
    assert table.evaluate("b/8 divides d", 24, 768) is True


def test_the_command_rewrites_only_between_the_markers(tmp_path, capsys):
    page = tmp_path / "methods.md"
    page.write_text(f"# Intro, kept\n\n{table.BEGIN}\nold rows\n{table.END}\n\nOutro, kept\n")
    assert table.main(["--write", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Intro, kept\n\n" + table.BEGIN) and text.endswith("\n\nOutro, kept\n")
    assert "old rows" not in text and "| `pq` (plan, storable) |" in text
    assert table.main(["--write", str(page)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{page}: already current"
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        table.main(["--write", str(tmp_path / "bare.md")])
