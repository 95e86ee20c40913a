"""The documentation's code blocks, run as written by the tests: a block is found by the marker
comment just above its fence, and a recipe module is dropped into a plugin folder the way a
developer adds one, so a doc that drifts from the code fails a test."""

from __future__ import annotations

import contextlib
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[2] / "docs"


def doc_block(page: str, marker: str, language: str = "python") -> str:
    """The fenced ``language`` block right after ``<!-- marker -->`` in ``docs/<page>``,
    dedented (a block inside a list item is indented)."""
    text = (DOCS / page).read_text()
    block = re.search(rf"<!-- {re.escape(marker)} -->\s*```{language}\n(.*?)```", text, re.S)
    assert block, f"docs/{page}: the {marker} block is missing"
    return textwrap.dedent(block.group(1))


@contextlib.contextmanager
def dropped_in(
    package: ModuleType, module: str, source: str, folder: Path, registry: dict, key: str
) -> Iterator[list[str]]:
    """``source`` saved as ``<module>.py`` in ``folder``, made part of ``package`` and found by
    its ``discover``, as a module dropped into the package's folder is; yields the module names
    discovered. Afterwards the package, its registry and ``sys.modules`` are as they were."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    before = package.__path__
    package.__path__ = [*before, str(folder)]
    try:
        yield package.discover(package.__path__)
    finally:
        package.__path__ = before
        registry.pop(key, None)
        sys.modules.pop(f"{package.__name__}.{module}", None)
