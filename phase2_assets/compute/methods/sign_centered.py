"""Sign codes after removing the corpus mean: raw dimensions (reference) and projected (bits).

Why: text embeddings occupy a narrow cone, every vector leaning the same way (Ethayarajh, "How
contextual are contextualized word representations?", EMNLP 2019; Gao et al., "Representation
degeneration problem in training natural language generation models", ICLR 2019). A sign code
thresholds each coordinate (or projection) at 0, and when the common offset dominates, most bits
are equal across the whole corpus and carry almost no information: Hamming distances collapse.
Thresholding at the corpus mean instead, bit j = [x_j > mu_j] (i.e. sign(x - mu)), makes each bit
split the corpus roughly in half again. Mean-centring before binarising is the first step of
spectral and quantisation hashing (Weiss, Torralba & Fergus, "Spectral hashing", NIPS 2008; Gong
& Lazebnik, "Iterative quantization", CVPR 2011, which zero-centres the data before its rotation)
and of the usual post-processing of embeddings (Mu & Viswanath, "All-but-the-top", ICLR 2018;
Su et al., "Whitening sentence representations for better semantics and faster retrieval", 2021).

Two methods:
- ``sign_centered`` (reference budget): one bit per raw dimension, d bits padded with zero bits to
  a multiple of 8 (the same padding for corpus and queries, so padding never adds distance).
- ``sign_centered_proj`` (bit budget): sign(R (x - mu)) with the instrument's projection R and
  seed, at the instrument's bit lengths, so it differs from ``binary`` only by the centring.

The mean is computed from the corpus only, streaming in float64 over row blocks (memmap
friendly), and stored as float32 (its reported overhead, 4 d bytes). Queries are centred with the
corpus mean, never with their own statistics, so a query's code does not depend on which other
queries are searched with it. Packing and search are the instrument's: bit j in byte j // 8 at
position j % 8, least significant first; exact Hamming top-k, ties by lower corpus row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phase2_assets.compute.data.storage import row_blocks
from phase2_assets.compute.exact_products import positive
from phase2_assets.compute.methods import instrument
from phase2_assets.compute.methods.base import (
    Built,
    Memory,
    Method,
    Settings,
    hamming_search,
    register,
)


@dataclass(frozen=True)
class CenteredIndex:
    mean: np.ndarray  # (d,) float32 corpus mean
    codes: np.ndarray  # (n, code_bits/8) uint8
    bits: int | None  # projected bits, or None for one bit per raw dimension


def corpus_mean(vectors: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """(d,) float32 mean of the rows, accumulated in float64 block by block."""
    n = vectors.shape[0]
    if n == 0:
        raise ValueError("empty corpus: no mean")
    total = np.zeros(vectors.shape[1], dtype=np.float64)
    for _, block in row_blocks(vectors, chunk):
        total += block.sum(axis=0, dtype=np.float64)
    return (total / n).astype(np.float32)


def encode_centered(
    vectors: np.ndarray,
    mean: np.ndarray,
    *,
    projection: np.ndarray | None = None,
    chunk: int = 65536,
) -> np.ndarray:
    """Packed sign(x - mean), or sign(R (x - mean)) with a (bits, d) ``projection``.

    Without a projection the d bits are packed into ceil(d / 8) bytes, the last byte padded with
    zero bits. A value exactly at the threshold gives 0, as in the instrument.
    """
    if vectors.ndim != 2 or vectors.shape[1] != mean.shape[0]:
        raise ValueError(f"vectors of shape {vectors.shape} for a {mean.shape[0]}-d mean")
    n, d = vectors.shape
    width = d if projection is None else projection.shape[0]
    r_t = None if projection is None else np.ascontiguousarray(projection.T, dtype=np.float32)
    codes = np.empty((n, -(-width // 8)), dtype=np.uint8)
    for start, block in row_blocks(vectors, chunk, np.float32):
        centred = block - mean
        signs = centred > 0 if r_t is None else positive(centred, r_t)
        codes[start : start + len(centred)] = np.packbits(
            signs, axis=1, bitorder=instrument.BIT_ORDER
        )
    return codes


def _search(index: CenteredIndex, queries: np.ndarray, k: int, settings: Settings) -> np.ndarray:
    projection = (
        None
        if index.bits is None
        else instrument.projection_matrix(index.mean.shape[0], index.bits, settings.projection_seed)
    )
    q_codes = encode_centered(
        queries, index.mean, projection=projection, chunk=settings.query_block
    )
    return hamming_search(q_codes, index.codes, k, settings)


def _padded(dim: int) -> int:
    return -(-dim // 8) * 8


@register
class SignCentered(Method):
    name = "sign_centered"
    budget = "reference"
    description = (
        "Sign of each raw dimension minus the corpus mean (d bits, padded to a byte), exact "
        "Hamming top-k."
    )
    peer = "sign of mean-centred dimensions"
    code_bytes = "⌈d/8⌉"
    also_counted = "mean 4·d"

    def code_bits(self, dim, bits):
        return _padded(dim)

    def memory(self, dim, bits):
        return Memory(_padded(dim) / 8, 4 * dim)  # the float32 mean

    def build(self, corpus, bits, settings):
        mean = corpus_mean(corpus, chunk=settings.corpus_block)
        codes = encode_centered(corpus, mean, chunk=settings.corpus_block)
        return Built(CenteredIndex(mean=mean, codes=codes, bits=None))

    def search(self, built, queries, k, bits, settings):
        index = built.index
        return _search(index, queries, k, settings)


@register
class SignCenteredProj(Method):
    name = "sign_centered_proj"
    budget = "bits"
    description = (
        "The instrument applied to mean-centred vectors: sign(R (x - mu)), same seed and bits, "
        "exact Hamming top-k."
    )
    peer = "the instrument on mean-centred vectors"
    code_bytes = "b/8"
    also_counted = "mean 4·d + projection 4·b·d"

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(bits / 8, 4 * dim + 4 * bits * dim)  # the mean and the projection

    def build(self, corpus, bits, settings):
        mean = corpus_mean(corpus, chunk=settings.corpus_block)
        projection = instrument.projection_matrix(corpus.shape[1], bits, settings.projection_seed)
        codes = encode_centered(corpus, mean, projection=projection, chunk=settings.corpus_block)
        return Built(CenteredIndex(mean=mean, codes=codes, bits=bits))

    def search(self, built, queries, k, bits, settings):
        index = built.index
        if bits != index.bits:
            raise ValueError(f"index built at {index.bits} bits, searched at {bits}")
        return _search(index, queries, k, settings)
