"""What a dataset source is: it finds a dataset's files and reads them into a ``Collection``.

A source is asked with a ``Request`` (the dataset's entry in the study config, plus where this
machine keeps data); ``locate`` answers None when the dataset is not its kind, so the next source
is asked, and raises when it is but cannot be had (a missing folder, downloads disabled).
``read`` returns the same three tables whatever the files looked like, so everything downstream
of the collection asset is the same for every format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import polars as pl

from phase2_assets.compute.data.beir import Collection, sample_rows


@dataclass(frozen=True)
class Request:
    """One dataset as the study names it (``datasets.<name>``) and this machine's data places."""

    name: str
    split: str
    sample_size: int | None
    seed: int  # seeds.corpus_sample
    download_dir: Path
    allow_download: bool
    path: str | None = None
    beir_name: str | None = None
    url: str | None = None
    checksum: str | None = None
    beir_dir: str | None = None  # PHASE2_BEIR_DIR

    @property
    def folder_name(self) -> str:
        return self.beir_name or self.name


class Source:
    """Base class of a source; ``kind`` names it in the registry and the run log."""

    kind: ClassVar[str]

    def locate(self, request: Request) -> Path | None:
        """The dataset's folder if it is this source's kind (None: ask the next source)."""
        raise NotImplementedError

    def read(self, folder: Path, request: Request) -> Collection:
        """The collection in ``folder``, sampled as ``request`` asks (``from_frames``)."""
        raise NotImplementedError


SOURCES: dict[str, Source] = {}


def register(cls: type[Source]) -> type[Source]:
    if cls.kind in SOURCES:
        raise ValueError(f"dataset source {cls.kind!r} registered twice")
    SOURCES[cls.kind] = cls()
    return cls


def from_frames(
    corpus: pl.DataFrame, queries: pl.DataFrame, qrels: pl.DataFrame, request: Request
) -> Collection:
    """A ``Collection`` from whole tables (corpus: doc_id, title, text; queries: query_id,
    text; qrels: query_id, doc_id, score), for a source that reads its files at once: the BEIR
    reader's rules (positive judgements only, the sample keeps every judged passage, only judged
    queries, judgements of absent passages counted and skipped) and its statistics."""
    text = [pl.col(c).cast(pl.Utf8).fill_null("") for c in ("title", "text")]
    ids = [pl.col(c).cast(pl.Utf8) for c in ("query_id", "doc_id")]
    corpus = corpus.select(pl.col("doc_id").cast(pl.Utf8), *text)
    queries = queries.select(ids[0], text[1])
    qrels = qrels.select(*ids, pl.col("score").cast(pl.Int64))
    doc_ids = corpus["doc_id"]
    repeated = doc_ids.filter(doc_ids.is_duplicated())
    if len(repeated):
        raise ValueError(f"dataset {request.name!r}: duplicate doc id {repeated[0]!r}")
    qrels = qrels.filter(pl.col("score") > 0)
    judged = set(qrels["doc_id"].to_list())
    flags = [d in judged for d in doc_ids.to_list()]
    keep = sample_rows(
        [i for i, j in enumerate(flags) if j],
        [i for i, j in enumerate(flags) if not j],
        request.sample_size,
        request.seed,
    )
    kept = corpus if keep is None else corpus[sorted(keep)]
    unknown = qrels.filter(~pl.col("doc_id").is_in(doc_ids.to_list())).height
    qrels = qrels.filter(pl.col("doc_id").is_in(kept["doc_id"].to_list()))
    wanted = set(qrels["query_id"].to_list())
    missing = sorted(wanted - set(queries["query_id"].to_list()))
    if missing:
        raise ValueError(
            f"dataset {request.name!r}: {len(missing)} query ids judged in the qrels have no "
            f"query text (e.g. {missing[:5]})"
        )
    queries = queries.filter(pl.col("query_id").is_in(list(wanted)))
    if queries.height == 0:
        raise ValueError(f"dataset {request.name!r}: no judged queries in split {request.split!r}")
    stats = {
        "corpus_lines": corpus.height,
        "corpus_kept": kept.height,
        "sampled": keep is not None,
        "queries": queries.height,
        "qrels_pairs": qrels.height,
        "qrels_unknown_doc_ids_skipped": unknown,
        "empty_documents": kept.filter((pl.col("title") == "") & (pl.col("text") == "")).height,
    }
    return Collection(corpus=kept, queries=queries, qrels=qrels, stats=stats)
