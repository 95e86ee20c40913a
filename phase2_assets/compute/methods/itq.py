"""PCA + Iterative Quantization (ITQ): a *learned* rotation before the sign, at b bits.

Why: the instrument's random hyperplanes ignore the data. ITQ (Gong & Lazebnik, "Iterative
Quantization: A Procrustean Approach to Learning Binary Codes", CVPR 2011; TPAMI 35(12), 2013)
keeps the b directions of largest variance (PCA) and then rotates them so that the projected
points sit as close as possible to the vertices of the hypercube {-1, +1}^b, i.e. it minimises the
quantisation loss ||B - V R||_F^2 over binary codes B and an orthogonal R by alternating
B = sign(V R) with the orthogonal Procrustes solution R = U W^T of the SVD V^T B = U S W^T. Each
step can only lower the loss, so the history is non-increasing. It is the classic "learned
binary code" baseline: if the instrument's gap to float is mostly due to its random, data-blind
projection, ITQ at the same bits should close part of it.

Details (deterministic: same corpus, seeds and settings give the same codes):
- Training uses the seeded corpus sample (``quantizers.training_sample`` with ``pq_train_size``,
  ``pq_seed``); queries are never seen. The mean is the sample mean; the principal directions
  are the top-b eigenvectors of the sample covariance in float64, each with its sign fixed so
  that its largest-magnitude component is positive (LAPACK does not fix eigenvector signs).
- The initial rotation is the Q of a QR decomposition of a Gaussian b x b matrix drawn from
  ``numpy.random.default_rng(pq_seed)``, column signs fixed by diag(R) > 0.
- Bit j of x is 1 iff ((x - mean) @ P @ R)[j] > 0, packed like the instrument
  (``numpy.packbits(..., bitorder="little")``); queries are encoded by the same function and
  searched by exact Hamming distance (``instrument.hamming_topk``, ties by lower corpus row).
- Memory: the code is b/8 bytes; the fixed overhead is the float32 PCA matrix (d x b), the mean
  (d) and the rotation (b x b), counted separately as in the paper even though P @ R could be
  stored as one d x b matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from phase2_assets.compute import threads
from phase2_assets.compute.exact_products import positive
from phase2_assets.compute.methods import instrument, quantizers
from phase2_assets.compute.methods.base import Built, Memory, Method, hamming_search, register


@dataclass(frozen=True)
class ItqIndex:
    """What search needs: the encoder (mean, d x b matrix P @ R) and the corpus codes."""

    mean: np.ndarray  # (d,) float32
    projection: np.ndarray  # (d, b) float32: PCA directions times the learned rotation
    codes: np.ndarray  # (n, b / 8) uint8, packed little-endian like the instrument
    losses: np.ndarray  # (iterations + 1,) quantisation loss ||B - V R||_F^2 per training vector

    @property
    def ntotal(self) -> int:
        return int(self.codes.shape[0])


def random_rotation(b: int, seed: int) -> np.ndarray:
    """A seeded random orthogonal (b, b) float64 matrix: QR of a Gaussian, signs made unique."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((b, b)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]


def pca(sample: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), top-b principal directions (d, b)) of ``sample``, float64, sign-canonical."""
    x = np.asarray(sample, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / max(len(x), 1)
    values, vectors = np.linalg.eigh(cov)
    top = vectors[:, np.argsort(values)[::-1][:b]]
    pivots = np.abs(top).argmax(axis=0)
    top = top * np.where(top[pivots, np.arange(b)] < 0, -1.0, 1.0)[None, :]
    return mean, top


def _loss(v: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, float]:
    vr = v @ r
    b = np.where(vr >= 0, 1.0, -1.0)
    return b, float(np.sum((b - vr) ** 2))


def itq_rotation(v: np.ndarray, iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ITQ on centred, PCA-projected data ``v`` (n, b): (rotation R (b, b), loss history).

    ``losses[t]`` is ||sign(V R_t) - V R_t||_F^2 for the rotation after t updates (t = 0 is the
    random start), so the history has ``iterations + 1`` entries and never increases.
    """
    v = np.asarray(v, dtype=np.float64)
    r = random_rotation(v.shape[1], seed)
    b, loss = _loss(v, r)
    losses = [loss]
    for _ in range(iterations):
        u, _, wt = np.linalg.svd(v.T @ b)  # orthogonal Procrustes: argmax_R tr(R^T V^T B)
        r = u @ wt
        b, loss = _loss(v, r)
        losses.append(loss)
    return r, np.asarray(losses)


def encode(
    vectors: np.ndarray, mean: np.ndarray, projection: np.ndarray, *, block: int = 65536
) -> np.ndarray:
    """Packed ITQ codes (n, b / 8) of ``vectors``, block by block (memmap friendly)."""
    n = vectors.shape[0]
    bits = projection.shape[1]
    codes = np.empty((n, bits // 8), dtype=np.uint8)
    for start in range(0, n, block):
        chunk = np.asarray(vectors[start : start + block], dtype=np.float32)
        signs = positive(chunk - mean, projection)
        codes[start : start + len(chunk)] = np.packbits(
            signs, axis=1, bitorder=instrument.BIT_ORDER
        )
    return codes


def train_itq(
    corpus: np.ndarray, bits: int, *, iterations: int, train_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean float32 (d,), P @ R float32 (d, bits), loss history) from a seeded corpus sample."""
    dim = corpus.shape[1]
    if bits <= 0 or bits % 8 or bits > dim:
        raise ValueError(f"ITQ needs bits a positive multiple of 8 and <= dim {dim}, got {bits}")
    sample = quantizers.training_sample(corpus, train_size, seed)
    mean, directions = pca(sample, bits)
    v = (sample.astype(np.float64) - mean) @ directions
    rotation, losses = itq_rotation(v, iterations, seed)
    projection = (directions @ rotation).astype(np.float32)
    return mean.astype(np.float32), projection, losses / len(sample)


class ItqParams(BaseModel):
    """``methods.itq`` in the study config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    iterations: int = Field(50, ge=0, description="ITQ rotation updates (Gong & Lazebnik use 50)")


@register
class ITQ(Method):
    name = "itq"
    budget = "bits"
    Params = ItqParams
    description = (
        "PCA to b dims + Iterative Quantization (learned rotation, Gong & Lazebnik 2011), "
        "sign codes, exact Hamming top-k."
    )
    peer = "ITQ (Gong & Lazebnik 2011)"
    code_bytes = "b/8"
    fits_when = "b ≤ d"
    also_counted = "PCA, mean and rotation: 4·(d·b + d + b²)"

    def fits(self, dim, bits):
        return bits <= dim

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(bits / 8, 4 * (dim * bits + dim + bits * bits))

    def build(self, corpus, bits, settings):
        with threads.single_thread():  # eigh, SVD and their products: thread-dependent sums
            mean, projection, losses = train_itq(
                corpus,
                bits,
                iterations=settings.params(self).iterations,
                train_size=settings.pq_train_size,
                seed=settings.pq_seed,
            )
        codes = encode(corpus, mean, projection, block=settings.corpus_block)
        return Built(ItqIndex(mean=mean, projection=projection, codes=codes, losses=losses))

    def search(self, built, queries, k, bits, settings):
        index = built.index
        q_codes = encode(queries, index.mean, index.projection, block=settings.query_block)
        return hamming_search(q_codes, index.codes, k, settings)

    def diagnostics(self, built, queries, truth_ids, settings):
        index = built.index
        return {
            "quantisation_loss_start": float(index.losses[0]),
            "quantisation_loss_end": float(index.losses[-1]),
        }
