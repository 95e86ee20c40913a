"""Encoding throughput: the embedding asset's path against bare ``SentenceTransformer.encode``.

The asset encodes through ``resumable.encode_resumable`` (chunks into a memory-mapped staging file
with a journal after each chunk) at ``precision: bf16`` on CPU (fp16 on CUDA), the study's faster
opt-in; the baseline is one ``model.encode`` call of a plain
float32 PyTorch SentenceTransformer on the same texts with the same batch size. Real SciFact
passages, all-MiniLM-L6-v2 (the offline bundle or the hub). The two sides' vectors are compared
too: the faster path must keep cosine >= 0.9999 to the baseline's for every passage.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from phase2_assets.compute.data import beir, encoders, resumable

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 64


def _texts(n: int) -> list[str]:
    root = os.environ.get("PHASE2_BEIR_DIR") or str(Path.cwd().parent / "shared" / "datasets")
    folder = Path(root) / "scifact"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: set PHASE2_BEIR_DIR to a folder holding scifact/")
    coll = beir.load_collection(folder, "test", None, 13)
    return beir.passage_texts(coll.corpus.head(n))


def compare(quick: bool) -> dict:
    texts = _texts(256 if quick else 1024)
    source = encoders.resolve_model("minilm", MODEL, None, os.environ.get("PHASE2_MODEL_DIR"))
    device = encoders.pick_device("auto")
    load = {"device": device, "max_seq_length": None, "trust_remote_code": False}
    bare = encoders.load_encoder(source, precision="fp32", backend="torch", **load)
    precision = "bf16" if not device.startswith("cuda") else encoders.pick_precision("auto", device)
    backend = encoders.pick_backend("auto")
    ours = encoders.load_encoder(source, precision=precision, backend=backend, **load)
    for model in (bare, ours):
        model.encode(texts[:BATCH], batch_size=BATCH)  # warm-up: first-call allocations
    bare_times, ours_times = [], []
    with tempfile.TemporaryDirectory(prefix="phase2-bench-encode-") as tmp:
        for round_ in range(1 if quick else 2):
            t0 = time.perf_counter()
            expected = bare.encode(
                texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True
            )
            bare_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            got, _ = resumable.encode_resumable(
                ours,
                texts,
                Path(tmp) / f"round{round_}.npy",
                dim=ours.get_embedding_dimension(),
                batch_size=BATCH,
                chunk=4096,
                model_id=f"{source.location}:{precision}",
            )
            ours_times.append(time.perf_counter() - t0)
            min_cosine = float((np.asarray(got) * expected).sum(axis=1).min())
            del got
    return {
        "texts": len(texts),
        "device": str(ours.device),
        "precision": precision,
        "backend": backend,
        "native_bf16": encoders.native_bf16(),
        "bare_docs_per_second": len(texts) / min(bare_times),
        "ours_docs_per_second": len(texts) / min(ours_times),
        "min_cosine": min_cosine,
        "ratio": min(bare_times) / min(ours_times),
    }
