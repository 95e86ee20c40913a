"""The registry of retrieval methods: one small class per method, one row per method in the table.

A method says how much memory it costs at a bit budget, how to build its index from the corpus
vectors and how to search it. Methods whose index is a study asset of its own (the instrument's
codes, PQ, int8) are built by that asset; any other registered method is built where it is
evaluated. Adding a method means adding a class here (or in a module imported here) with
``@register``; the evaluation assets pick it up and the results table gains rows, not columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from phase2_assets.compute import instrument, quantizers


@dataclass(frozen=True)
class Settings:
    """The parameters methods need, taken from the study config by the Dagster layer."""

    projection_seed: int = 42
    pq_seed: int = 7
    pq_nbits: int = 8
    pq_train_size: int = 65536
    query_block: int = 256
    corpus_block: int = 65536


@dataclass(frozen=True)
class Memory:
    """Honest memory accounting (STUDY.md §4), reported in separate columns."""

    bytes_per_vector: float  # the code alone
    fixed_overhead_bytes: int  # projection matrices, codebooks, rotations, quantiser ranges


class Method:
    """Base class: ``budget`` is 'reference' (float32, int8) or 'bits' (one row per bit length)."""

    name: ClassVar[str]
    budget: ClassVar[str]
    description: ClassVar[str]

    def applies(self, dim: int, bits: int | None, planned: dict[str, set[int]]) -> bool:
        return True

    def code_bits(self, dim: int, bits: int | None) -> int:
        raise NotImplementedError

    def memory(self, dim: int, bits: int | None) -> Memory:
        raise NotImplementedError

    def build(self, corpus: np.ndarray, bits: int | None, settings: Settings) -> Any:
        raise NotImplementedError

    def search(
        self, index: Any, queries: np.ndarray, k: int, bits: int | None, settings: Settings
    ) -> np.ndarray:
        raise NotImplementedError


METHODS: dict[str, Method] = {}


def register(cls: type[Method]) -> type[Method]:
    if cls.name in METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    METHODS[cls.name] = cls()
    return cls


def methods_for(budget: str) -> list[Method]:
    return [m for m in METHODS.values() if m.budget == budget]


@register
class Float32(Method):
    name = "float32"
    budget = "reference"
    description = "Exact inner product on the float32 vectors: the ground truth itself."

    def code_bits(self, dim, bits):
        return 32 * dim

    def memory(self, dim, bits):
        return Memory(4.0 * dim, 0)


@register
class Int8(Method):
    name = "int8"
    budget = "reference"
    description = "faiss SQ8: one byte per dimension, per-dimension min/max ranges."

    def code_bits(self, dim, bits):
        return 8 * dim

    def memory(self, dim, bits):
        return Memory(float(dim), 2 * 4 * dim)

    def build(self, corpus, bits, settings):
        return quantizers.build_int8(corpus, block=settings.corpus_block)

    def search(self, index, queries, k, bits, settings):
        return quantizers.index_topk(index, queries, k, query_block=settings.query_block)


@register
class Binary(Method):
    name = "binary"
    budget = "bits"
    description = "The instrument: seeded Gaussian projection + sign, exact Hamming top-k."

    def applies(self, dim, bits, planned):
        return bits in planned.get("binary", set())

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        # The projection can be regenerated from its seed; its float32 size is reported anyway.
        return Memory(bits / 8, 4 * bits * dim)

    def build(self, corpus, bits, settings):
        return instrument.encode(
            corpus, bits, settings.projection_seed, chunk=settings.corpus_block
        )

    def search(self, index, queries, k, bits, settings):
        q_codes = instrument.encode(queries, bits, settings.projection_seed)
        ids, _ = instrument.hamming_topk(
            q_codes, index, k, query_block=settings.query_block, corpus_block=settings.corpus_block
        )
        return ids


@register
class PQ(Method):
    name = "pq"
    budget = "bits"
    description = "faiss IndexPQ, M = bits/8 sub-quantisers of 8 bits, asymmetric distance."

    def applies(self, dim, bits, planned):
        m = bits // 8
        return m in planned.get("pq", set()) and dim % m == 0

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        m = bits // 8
        return Memory(float(m), 4 * dim * 256)  # M codebooks of 256 centroids of dim/M floats

    def build(self, corpus, bits, settings):
        return quantizers.build_pq(
            corpus,
            bits // 8,
            nbits=settings.pq_nbits,
            train_size=settings.pq_train_size,
            seed=settings.pq_seed,
            block=settings.corpus_block,
        )

    def search(self, index, queries, k, bits, settings):
        return quantizers.index_topk(index, queries, k, query_block=settings.query_block)
