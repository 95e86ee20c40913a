"""X3 light adapter: a linear projection + sign learned with torch on cached embeddings.

Why: the instrument's hyperplanes are random and data-blind; on text embeddings, which crowd into
a narrow cone, many of them barely cut the data and their bits are nearly constant. X3 asks
whether a cheap learned transform, with the encoder frozen, recovers a useful part of the binary
vs PQ gap. The adapter is the instrument with learned rows: bit j of x is 1 iff
``x @ weights[j] > thresholds[j]``, packed like the instrument (``numpy.packbits(...,
bitorder="little")``), so ``instrument.hamming_topk`` searches it and the only change from the
baseline is the learned (bits, dim) matrix and (bits,) thresholds (4 (bits dim + bits) bytes of
fixed overhead, like ITQ's).

Training (deterministic: same inputs, config and seed give the same weights and codes):
- Data: a seeded sample of ``train_size`` corpus rows (the *pool*) and anchors: train-split
  queries, or, when there are none, held-out corpus rows used as pseudo-queries (never also in the
  pool, so an anchor cannot find itself). The evaluation queries are not an argument: they cannot
  leak. A seeded ``validation_fraction`` of the anchors is held out for early stopping, which
  measures hard-code recall@10 of those anchors against their exact float top-10 in the pool.
- Loss on each anchor's candidates (its exact float top-``neighbours`` in the pool, which hold the
  top-10 and the hard negatives just behind it, plus ``negatives`` random pool rows): the relaxed
  code similarity s = h_a . h_c / bits (equal to 1 - 2 Hamming / bits for hard codes) against the
  target 1 - 2 theta / pi, which is what random sign codes estimate without bias (Charikar 2002).
  ``pearson``: 1 - the per-anchor correlation of s and target, a similarity-preserving loss blind
  to the shift and scale that a learned code may change without changing any ranking (a plain
  squared error penalises those and, tried on the synthetic cone of the tests, lowered recall).
  ``rank_kl``: KL(softmax(target / T) || softmax(s / T)) per anchor, listwise, because only the
  order of the top-10 matters for recall@10. ``balance`` > 0 adds the squared mean of each
  relaxed bit over the candidates, pushing every bit to split the data.
- Relaxation of sign: ``tanh`` uses h = tanh(beta z) with beta annealed geometrically from
  ``beta_start`` to ``beta_end`` over ``epochs`` (soft early, close to sign late); ``ste`` uses the
  hard sign forward and tanh's gradient backward (straight-through). z is the projection onto
  unit-norm rows divided by a fixed scale (its RMS over the pool at the start): sign ignores row
  norms, so normalising keeps beta and the learning rate meaningful while Adam moves the rows.
- ``kind``: ``linear`` keeps hyperplanes through the origin, as in the instrument; ``affine``
  also learns thresholds, started at the pool mean's projection (centring, see
  ``methods/sign_centered.py``), so epoch 0 of ``affine`` is the centred instrument and the
  history separates the gain of centring from that of learning. ``init``: ``instrument`` starts at
  ``instrument.projection_matrix(dim, bits, seed)``, so epoch 0 of ``linear`` reproduces the
  baseline codes byte for byte; ``itq`` starts at ITQ's PCA + rotation (``affine`` only, bits <=
  dim) to test whether training improves on the strongest learned baseline.
- Early stopping: epoch 0 is the start; after ``patience`` epochs without a strictly better
  validation recall, training stops and the best epoch's weights are returned (ties keep the
  earlier epoch, so lr = 0 returns the start exactly).
- Determinism: sampling uses ``numpy.random.default_rng(seed)`` and a CPU ``torch.Generator``, no
  global RNG. On CPU every kernel used is deterministic, so results are identical for the same
  thread count (a different count may change float sums, so some codes). On CUDA, deterministic
  algorithms are switched on for the call (warn only), results are reproducible only with
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` set before the process starts, and they differ from CPU.
- Validation runs in torch (exact Hamming top-10, instrument ties) on the training device: its
  hard codes come from the torch weights, which can differ from the exported numpy ones only for
  a projection within float rounding of its threshold.
- ``seconds`` is the wall time of the whole call (sampling, exact top-k, training) on ``device``.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from phase2_assets.compute import threads
from phase2_assets.compute.data.storage import release_pages, row_blocks
from phase2_assets.compute.methods import instrument, itq
from phase2_assets.compute.methods.base import Built, Memory, Method, hamming_search
from phase2_assets.compute.search.exact_search import float_topk
from phase2_assets.compute.search.metrics import recall_at_k

if TYPE_CHECKING:  # torch is imported where it runs: this module is loaded with the code
    import torch  # location (every run process, every `dagster` command), torch costs ~3 s

VALIDATION_K = 10
_CHOICES = {
    "kind": ("linear", "affine"),
    "relaxation": ("tanh", "ste"),
    "loss": ("rank_kl", "pearson"),
    "init": ("instrument", "itq"),
}


@dataclass(frozen=True)
class AdapterConfig:
    """One X3 configuration (the plan allows at most three); plain values, so YAML maps to it."""

    name: str = "affine_tanh_pearson"
    kind: str = "affine"
    relaxation: str = "tanh"
    loss: str = "pearson"
    init: str = "instrument"
    lr: float = 3e-3  # Adam, on unit-norm rows
    epochs: int = 30  # maximum; early stopping usually ends sooner
    batch_size: int = 64
    patience: int = 3
    # Corpus rows in the pool: its training budget. At 500K x 768 a pool of 65,536 took 5.2x
    # PQ's build at 256 bits; 16,384 keep X3 within 3x (bench/RESULTS.md). SciFact is smaller.
    train_size: int = 16384
    anchors: int = 8192  # training + validation anchors
    validation_fraction: float = 0.2
    neighbours: int = 50  # exact float top-C per anchor among the candidates
    negatives: int = 50  # random pool rows per anchor, drawn anew for every batch
    temperature: float = 0.1  # rank_kl, on the 1 - 2 theta / pi scale
    beta_start: float = 1.0
    beta_end: float = 10.0
    balance: float = 0.0
    itq_iterations: int = 50

    def __post_init__(self):
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.init == "itq" and self.kind != "affine":
            raise ValueError("init='itq' needs kind='affine': ITQ's hyperplanes pass the mean")
        positive = ("batch_size", "patience", "train_size", "anchors", "neighbours")
        if self.epochs < 0 or any(getattr(self, k) <= 0 for k in positive):
            raise ValueError(f"epochs must be >= 0 and {positive} positive")
        if self.lr < 0 or self.negatives < 0 or self.balance < 0 or self.temperature <= 0:
            raise ValueError("lr, negatives and balance must be >= 0, temperature > 0")
        if not 0 < self.validation_fraction < 1 or not 0 < self.beta_start <= self.beta_end:
            raise ValueError("need 0 < validation_fraction < 1 and 0 < beta_start <= beta_end")


@dataclass(frozen=True)
class Adapter:
    """Learned weights (numpy, saved as .npz, never pickled) and the record of how they were made.

    ``pool_rows`` are corpus rows; the anchor rows index ``train_queries`` or, when
    ``anchor_source`` is "corpus", the corpus. ``loss_history[e]`` and ``recall_history[e]`` are
    epoch e's mean training loss (nan for the start) and validation recall@10.
    """

    weights: np.ndarray  # (bits, dim) float32
    thresholds: np.ndarray  # (bits,) float32, zeros for kind="linear"
    config: AdapterConfig
    seed: int
    best_epoch: int
    loss_history: np.ndarray
    recall_history: np.ndarray
    pool_rows: np.ndarray
    train_anchor_rows: np.ndarray
    validation_anchor_rows: np.ndarray
    anchor_source: str  # "train_queries" or "corpus"
    seconds: float
    device: str

    @property
    def bits(self) -> int:
        return int(self.weights.shape[0])

    @property
    def overhead_bytes(self) -> int:
        return 4 * (self.weights.size + self.thresholds.size)

    def project(self, vectors: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """(n, bits) float32 x @ W^T - t, the pre-sign adapted space (for geometry, on a sample)."""
        return np.concatenate(list(_projected(vectors, self.weights, self.thresholds, chunk)))

    def encode(self, vectors: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """Packed (n, bits / 8) uint8 codes, chunk by chunk (memmap friendly)."""
        return encode(vectors, self.weights, self.thresholds, chunk=chunk)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything but the config and scalars, for ``numpy.savez``."""
        names = ("weights", "thresholds", "loss_history", "recall_history", "pool_rows")
        names += ("train_anchor_rows", "validation_anchor_rows")
        return {name: getattr(self, name) for name in names}


def _projected(vectors, weights, thresholds, chunk):
    """x @ W^T - t per chunk; z - 0 == z, so a linear adapter at its start is the instrument."""
    if vectors.ndim != 2 or vectors.shape[1] != weights.shape[1]:
        raise ValueError(f"vectors of shape {vectors.shape} for a {weights.shape[1]}-d adapter")
    w_t = np.ascontiguousarray(weights.T, dtype=np.float32)
    for start, block in row_blocks(vectors, chunk, np.float32):
        if not np.isfinite(block).all():
            raise ValueError(f"non-finite values in rows {start}..{start + len(block) - 1}")
        yield block @ w_t - thresholds


def encode(
    vectors: np.ndarray, weights: np.ndarray, thresholds: np.ndarray, *, chunk: int = 65536
) -> np.ndarray:
    """Packed codes of saved weights: bit j of x is 1 iff x @ weights[j] - thresholds[j] > 0."""
    codes = np.empty((vectors.shape[0], weights.shape[0] // 8), dtype=np.uint8)
    start = 0
    for z in _projected(vectors, weights, thresholds, chunk):
        codes[start : start + len(z)] = np.packbits(z > 0, axis=1, bitorder=instrument.BIT_ORDER)
        start += len(z)
    return codes


def _rows(array: np.ndarray, rows: np.ndarray, what: str) -> np.ndarray:
    out = np.ascontiguousarray(array[rows], dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"non-finite values in the sampled {what} rows")
    return out


def gap_closed(baseline: float, adapted: float, pq: float) -> float:
    """(adapted - baseline) / (pq - baseline): the share of the binary -> PQ gap closed.

    NaN when PQ does not beat the baseline (pq <= baseline: there is no gap, and the ratio would
    be infinite or have its sign flipped) or any input is NaN; read ``points_gained`` then. Not
    clipped: negative means the adapter hurt, above 1 that it beat PQ.
    """
    values = (baseline, adapted, pq)
    if not all(math.isfinite(v) for v in values) or pq <= baseline:
        return float("nan")
    return (adapted - baseline) / (pq - baseline)


def points_gained(baseline: float, adapted: float) -> float:
    """Recall gained in percentage points (recall is a fraction in [0, 1])."""
    return 100.0 * (adapted - baseline)


def _initial(pool: np.ndarray, bits: int, config: AdapterConfig, seed: int):
    if config.init == "itq":
        mean, projection, _ = itq.train_itq(
            pool, bits, iterations=config.itq_iterations, train_size=len(pool), seed=seed
        )
        return projection.T.copy(), mean @ projection
    w = instrument.projection_matrix(pool.shape[1], bits, seed)
    return w, (pool.mean(axis=0, dtype=np.float64) @ w.T if config.kind == "affine" else None)


def train_adapter(
    corpus: np.ndarray,
    train_queries: np.ndarray | None,
    bits: int,
    config: AdapterConfig,
    *,
    seed: int,
    device: str = "cpu",
) -> Adapter:
    """Learn an adapter from ``corpus`` and ``train_queries`` only (None or empty: pseudo-queries
    from held-out corpus rows); only the recorded sample rows are read. ``seed`` is also the
    instrument seed of init="instrument": use the instrument's, so epoch 0 is the baseline."""
    import torch

    started = time.perf_counter()
    if bits <= 0 or bits % 8:
        raise ValueError(f"bits must be a positive multiple of 8, got {bits}")
    if corpus.ndim != 2 or corpus.shape[0] < 8:
        raise ValueError(f"corpus must be a 2-d array of at least 8 rows, got {corpus.shape}")
    n, dim = corpus.shape
    rng = np.random.default_rng(seed)
    if train_queries is not None and len(train_queries) > 0:
        if train_queries.ndim != 2 or train_queries.shape[1] != dim:
            raise ValueError(f"train_queries of shape {train_queries.shape} for a {dim}-d corpus")
        source, n_anchor = "train_queries", min(config.anchors, len(train_queries))
        pool_rows = np.sort(rng.choice(n, min(n, config.train_size), replace=False))
        anchor_rows = np.sort(rng.choice(len(train_queries), n_anchor, replace=False))
        anchors = _rows(train_queries, anchor_rows, "train query")
    else:  # held-out corpus rows, disjoint from the pool, at most a quarter of the corpus
        source, n_anchor = "corpus", min(config.anchors, n // 4)
        drawn = rng.choice(n, min(n, n_anchor + config.train_size), replace=False)
        anchor_rows, pool_rows = np.sort(drawn[:n_anchor]), np.sort(drawn[n_anchor:])
        anchors = _rows(corpus, anchor_rows, "corpus (pseudo-query)")
    n_val = max(1, round(config.validation_fraction * n_anchor))
    if n_anchor - n_val < 1:
        raise ValueError(f"{n_anchor} anchors: too few to hold out a validation part")
    order = rng.permutation(n_anchor)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    pool = _rows(corpus, pool_rows, "corpus")
    release_pages(corpus)  # the sampled rows are copied; the pages they sat on can go
    w0, t0 = _initial(pool, bits, config, seed)
    fit = _fit(pool, anchors[train_idx], anchors[val_idx], w0, t0, config, seed, device)
    return Adapter(
        config=config,
        seed=seed,
        pool_rows=pool_rows.astype(np.int64),
        train_anchor_rows=anchor_rows[train_idx].astype(np.int64),
        validation_anchor_rows=anchor_rows[val_idx].astype(np.int64),
        anchor_source=source,
        seconds=time.perf_counter() - started,
        device=str(torch.device(device)),
        **fit,
    )


def _fit(pool, train_anchors, val_anchors, w0, t0, config: AdapterConfig, seed: int, device):
    """The torch loop: Adam on unit-norm rows (and thresholds), one validation per epoch."""
    import torch

    _, candidates = float_topk(train_anchors, pool, config.neighbours, with_scores=False)
    _, val_truth = float_topk(val_anchors, pool, VALIDATION_K, with_scores=False)
    bits = w0.shape[0]

    def validate(w: torch.Tensor, t: torch.Tensor) -> float:
        with torch.no_grad():
            ids = _hamming_topk(_signs(val_t, w, t), _signs(pool_t, w, t), VALIDATION_K)
        return recall_at_k(ids.cpu().numpy(), val_truth, VALIDATION_K)

    dev = torch.device(device)
    restore = torch.are_deterministic_algorithms_enabled()
    restore_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if dev.type != "cpu":  # the CPU kernels used are deterministic; the switch imports inductor
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        pool_t = torch.from_numpy(pool).to(dev)
        anchors_t = torch.from_numpy(train_anchors).to(dev)
        val_t = torch.from_numpy(val_anchors).to(dev)
        cand_t = torch.from_numpy(candidates).to(dev)
        # Unit-norm rows, so that lr means the same for every init; thresholds scale with them.
        norms0 = np.linalg.norm(w0.astype(np.float64), axis=1)
        w = torch.tensor(w0 / norms0[:, None], dtype=torch.float32, device=dev, requires_grad=True)
        t_unit = np.zeros(bits) if t0 is None else t0 / norms0
        t = torch.tensor(t_unit, dtype=torch.float32, device=dev, requires_grad=t0 is not None)
        with torch.no_grad():
            scale = ((pool_t @ w.T - t) ** 2).mean().sqrt()
        optimiser = torch.optim.Adam([w, t] if t0 is not None else [w], lr=config.lr)
        generator = torch.Generator().manual_seed(seed)
        start_t = np.zeros(bits) if t0 is None else t0
        best = {"weights": w0.copy(), "thresholds": start_t.astype(np.float32)}  # exact start
        losses, recalls, best_epoch, stale = [float("nan")], [validate(w, t)], 0, 0
        for epoch in range(1, config.epochs + 1):
            frac = (epoch - 1) / max(config.epochs - 1, 1)
            beta = config.beta_start * (config.beta_end / config.beta_start) ** frac
            perm = torch.randperm(len(train_anchors), generator=generator)
            total = 0.0
            for start in range(0, len(perm), config.batch_size):
                batch = perm[start : start + config.batch_size]
                noise = torch.randint(
                    len(pool), (len(batch), config.negatives), generator=generator
                )
                cand = torch.cat([cand_t[batch.to(dev)], noise.to(dev)], dim=1)
                loss = _loss(anchors_t[batch.to(dev)], pool_t, cand, w, t, scale, beta, config)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            losses.append(total / len(perm))
            recalls.append(validate(w, t))
            if recalls[-1] > recalls[best_epoch]:
                weights, thresholds = _export(w, t)
                best, best_epoch, stale = {"weights": weights, "thresholds": thresholds}, epoch, 0
            elif (stale := stale + 1) >= config.patience:
                break
    finally:
        if dev.type != "cpu":
            torch.use_deterministic_algorithms(restore, warn_only=restore_warn)
    return {
        **best,
        "best_epoch": best_epoch,
        "loss_history": np.asarray(losses),
        "recall_history": np.asarray(recalls),
    }


def _signs(x: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Hard codes as +-1 floats (bit 1 iff x @ unit_j - t_j > 0), whose dot products are exact."""
    import torch

    return torch.where(x @ (w / w.norm(dim=1, keepdim=True)).T - t > 0, 1.0, -1.0)


def _hamming_topk(q: torch.Tensor, codes: torch.Tensor, k: int, block: int = 64) -> torch.Tensor:
    """Exact Hamming top-k with the instrument's ties (lower row first), on the training device.

    Validation stays in torch: calling faiss between torch steps makes their two OpenMP runtimes
    spin against each other on CPU (about 20x slower on 2 busy cores). Hamming = (bits - dot) / 2,
    so the float64 key dot * n - row is unique and orders as (distance, row).
    """
    import torch

    n = codes.shape[0]
    rows = torch.arange(n, dtype=torch.float64, device=codes.device)
    out = []
    for start in range(0, len(q), block):
        key = (q[start : start + block] @ codes.T).double() * n - rows
        out.append(key.topk(min(k, n), dim=1).indices)
    return torch.cat(out)


def _export(w: torch.Tensor, t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Numpy (weights, thresholds) with sign(x @ w_j - thresholds_j) = sign(x @ unit_j - t_j)."""
    w, t = w.detach(), t.detach()
    return w.cpu().numpy().copy(), (t * w.norm(dim=1)).cpu().numpy().astype(np.float32)


def _loss(anchors, pool, cand, w, t, scale, beta, config: AdapterConfig) -> torch.Tensor:
    """Loss of (b, d) anchors against their (b, m) candidate pool rows.

    Each distinct candidate is projected once (batches share many rows), then gathered back.
    """
    import torch

    ids, inverse = torch.unique(cand, return_inverse=True)
    rows = pool[ids]
    with torch.no_grad():
        cos = (anchors @ rows.T).gather(1, inverse).clamp(-1.0, 1.0)
        target = 1.0 - 2.0 * torch.arccos(cos) / math.pi
    unit = w / w.norm(dim=1, keepdim=True)

    def relax(x):
        soft = torch.tanh(beta * (x @ unit.T - t) / scale)
        if config.relaxation == "tanh":
            return soft
        return torch.where(soft > 0, 1.0, -1.0) + soft - soft.detach()  # straight-through

    h_rows = relax(rows)  # indexing, not gather, in the graph: its backward has a deterministic
    sim = torch.einsum("bk,bmk->bm", relax(anchors), h_rows[inverse]) / w.shape[0]  # CUDA kernel
    if config.loss == "rank_kl":
        p = torch.softmax(target / config.temperature, dim=1)
        log_q = torch.log_softmax(sim / config.temperature, dim=1)
        loss = (p * (torch.log(p.clamp_min(1e-30)) - log_q)).sum(dim=1).mean()
    else:  # pearson: per-anchor correlation, blind to the shift and scale a code may change
        sim_c, target_c = sim - sim.mean(1, keepdim=True), target - target.mean(1, keepdim=True)
        corr = (sim_c * target_c).sum(1) / (sim_c.norm(dim=1) * target_c.norm(dim=1) + 1e-12)
        loss = 1.0 - corr.mean()
    if config.balance:
        loss = loss + config.balance * (h_rows.mean(dim=0) ** 2).mean()
    return loss


@dataclass(frozen=True)
class AdaptedCodes:
    """The trained adapter and the corpus codes it gives: what ``AdapterMethod.search`` reads."""

    adapter: Adapter
    codes: np.ndarray  # (n, bits / 8) uint8

    def __len__(self) -> int:
        return len(self.codes)


class AdapterMethod(Method):
    """X3's adapter as a method, so that it is built and scored like every other. Not in the
    registry: it runs in the exploratory track only, one configuration at a time."""

    name = "adapter"
    budget = "bits"
    description = "A learned (bits x d) projection + thresholds, then sign: X3's light adapter."

    def __init__(self, config: AdapterConfig, *, seed: int, device: str = "cpu"):
        self.config, self.seed, self.device = config, seed, device

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        return Memory(bits / 8, 4 * (bits * dim + bits))  # the weights and the thresholds

    def build(self, corpus, bits, settings):
        # On CPU, torch's reductions depend on its thread count: one thread keeps the adapter,
        # and so X3's table, the same on any number of cores (a GPU is not thread-bound).
        pinned = threads.single_thread() if self.device == "cpu" else contextlib.nullcontext()
        with pinned:
            fitted = train_adapter(
                corpus, None, bits, self.config, seed=self.seed, device=self.device
            )
            codes = fitted.encode(corpus, chunk=settings.corpus_block)
        return Built(AdaptedCodes(fitted, codes))

    def search(self, built, queries, k, bits, settings):
        q_codes = built.index.adapter.encode(queries, chunk=settings.query_block)
        return hamming_search(q_codes, built.index.codes, k, settings)
