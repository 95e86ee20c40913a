"""The check recipe of docs/extending.md, run as written: a method that declares a check in its
``Stored`` and computes it in ``check_index`` gets an index asset whose check passes on good codes
and fails, with its number, on codes that waste a bit."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from phase2_assets.compute.methods import METHODS, Settings, instrument, storable
from phase2_assets.compute.methods.base import Built, Memory, hamming_search
from phase2_assets.testing.recipes import doc_block

MODULE = "phase2_assets.compute.methods.my_checked_method"

# What the recipe leaves out as "...": the parts every method has (docs/extending/a-method.md).
REST_OF_THE_METHOD = """
    name = "my_checked_method"
    budget = "bits"
    follows = "binary"
    description = "The instrument with a check of its own."

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(bytes_per_vector=bits / 8, fixed_overhead_bytes=4 * bits * dim)

    def build(self, corpus, bits, settings):
        return Built(instrument.encode(corpus, bits, settings.projection_seed))

    def search(self, built, queries, k, bits, settings):
        codes = instrument.encode(queries, bits, settings.projection_seed)
        return hamming_search(codes, built.index, k, settings)
"""


def recipe() -> str:
    block = doc_block("extending.md", "docs-check")
    assert "    ...\n" in block
    return block.replace("    ...\n", REST_OF_THE_METHOD, 1)


@pytest.fixture
def method():
    namespace = {
        "__name__": MODULE,
        "Built": Built,
        "Memory": Memory,
        "instrument": instrument,
        "hamming_search": hamming_search,
    }
    exec(compile(recipe(), "docs/extending.md", "exec"), namespace)
    yield METHODS["my_checked_method"]
    METHODS.pop("my_checked_method", None)
    sys.modules.pop(MODULE, None)


def test_the_recipes_check_passes_on_good_codes_and_fails_on_a_wasted_bit(method):
    assert "my_checked_method" in storable()  # methods.store may list it
    (check,) = method.stored.index_checks
    assert check.name == "no_constant_bit" and check.warn_only and not check.blocking
    settings = Settings()
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((200, 32)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    built = method.build(corpus, 64, settings)
    good = method.check_index(built, corpus, 64, settings)["no_constant_bit"]
    assert good.passed and good.metadata == {"constant_bits": 0}

    built.index[:, 0] |= 0b1  # bit 0 set on every passage: it says nothing
    bad = method.check_index(built, corpus, 64, settings)["no_constant_bit"]
    assert not bad.passed and bad.metadata == {"constant_bits": 1}
