"""A tiny study anyone can build in a second: a random 1-layer BERT, a BEIR collection of word
salads with real topic structure, and a study config over both. The tests, the benchmarks and
the ``dagster dev`` harness use it; it downloads nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import yaml

# 200 made-up words in 10 topics of 20: documents and queries draw from one topic, so the
# collection has real neighbourhood structure (judged docs share the query's topic).
WORDS = [
    a + b + c
    for a in ("ba", "ko", "mi", "tu", "re", "sa", "no")
    for b in ("la", "pe", "vi", "zo", "ru")
    for c in ("k", "m", "t", "s", "n", "x")
][:200]
TOPICS = [WORDS[i * 20 : (i + 1) * 20] for i in range(10)]
# The real collections beside a checkout of the repository (../shared/datasets).
SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def shared_datasets_dir() -> Path | None:
    """The real collections (../shared/datasets or $PHASE2_BEIR_DIR), if this machine has them."""
    env = os.environ.get("PHASE2_BEIR_DIR")
    for candidate in (Path(env) if env else None, SHARED_DATASETS):
        if candidate and (candidate / "scifact" / "corpus.jsonl").exists():
            return candidate
    return None


def write_tiny_model(folder: Path, *, plant_nan: bool = False) -> Path:
    """A randomly initialised 1-layer, 32-d BERT saved as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)})
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.5,  # large random weights: embeddings that are not all alike
    )
    bert = BertModel(config)
    if plant_nan:
        with torch.no_grad():
            bert.embeddings.word_embeddings.weight[5:25].fill_(float("nan"))  # topic 0 words
    hf_dir = folder / "hf"
    bert.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=32)
    pooling = Pooling(32, "mean")
    st_dir = folder / "st"
    SentenceTransformer(modules=[transformer, pooling, Normalize()]).save(str(st_dir))
    return st_dir


def write_tiny_beir(folder: Path, n_docs: int = 300, n_queries: int = 12, seed: int = 0) -> Path:
    """A BEIR-layout collection of random word salads with 1-3 judged docs per query."""
    rng = np.random.default_rng(seed)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    doc_topic = rng.integers(0, len(TOPICS), size=n_docs)
    with open(folder / "corpus.jsonl", "w") as fh:
        for i, t in enumerate(doc_topic):
            words = rng.choice(TOPICS[t], size=int(rng.integers(3, 8)))
            title = " ".join(rng.choice(TOPICS[t], size=2))
            fh.write(json.dumps({"_id": f"d{i}", "title": title, "text": " ".join(words)}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    with open(folder / "queries.jsonl", "w") as fh:
        for q in range(n_queries):
            t = q % len(TOPICS)
            text = " ".join(rng.choice(TOPICS[t], 3))
            fh.write(json.dumps({"_id": f"q{q}", "text": text}) + "\n")
            same_topic = np.flatnonzero(doc_topic == t)
            for d in rng.choice(same_topic, size=min(3, len(same_topic)), replace=False):
                lines.append(f"q{q}\td{d}\t{int(rng.integers(1, 3))}")
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_tiny_study(path: Path, beir_dir: Path, model_dir: Path, **overrides) -> Path:
    study = {
        "name": "tiny",
        "datasets": {"tiny": {"path": str(beir_dir), "split": "test"}},
        "models": {"tiny-bert": {"name": "tests/tiny-bert", "path": str(model_dir), "dim": 32}},
        "tiers": {
            "tier1": {
                "datasets": ["tiny"],
                "models": ["tiny-bert"],
                "bits": [8, 16, 32, 64],
                "pq_bytes": [1, 2, 4, 8],
            }
        },
        "pq": {"train_size": 256},
        "retrieval": {"ground_truth_k": 100, "query_block": 5, "corpus_block": 128},
        "checks": {"sample_size": 100},
        "bfi": {"recall_bits": [32, 64]},
        "analysis": {"pair_sample": 500, "n_bootstrap": 50},
    }
    study.update(overrides)
    path.write_text(yaml.safe_dump(study))
    return path
