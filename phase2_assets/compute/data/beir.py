"""BEIR-format collections: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Files are streamed line by line (full MS MARCO is 8.8M lines), errors name the file and line, and
subsampling is seeded and keeps every judged passage, so task metrics stay meaningful on a sample.
Where the folder comes from (a path, $PHASE2_BEIR_DIR, the BEIR download) is the dataset
sources' business (``compute/data/sources``).
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl


class BeirFormatError(ValueError):
    """Malformed BEIR input; the message starts with 'file:line'."""


@dataclass
class Collection:
    corpus: pl.DataFrame  # doc_id, title, text  (row order = corpus row used everywhere)
    queries: pl.DataFrame  # query_id, text      (only queries judged in the split)
    qrels: pl.DataFrame  # query_id, doc_id, score (only pairs whose doc is in the corpus)
    stats: dict = field(default_factory=dict)


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, decoded one line at a time so a byte that is not
    UTF-8 is named by its line (and column), not by an offset into a read buffer."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BeirFormatError(
                    f"{path}:{lineno}: not UTF-8 (byte {raw[exc.start]:#04x} at column "
                    f"{exc.start + 1}); re-encode the file as UTF-8"
                ) from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; malformed lines raise with file:line.
    An ``_id`` must be a string or an integer: a float (77.0), null or a list would become an
    id that the qrels' "77" never matches."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BeirFormatError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from exc
        if not isinstance(obj, dict) or "_id" not in obj:
            raise BeirFormatError(f"{path}:{lineno}: expected an object with an '_id' field")
        _id = obj["_id"]
        if isinstance(_id, bool) or not isinstance(_id, (str, int)):
            raise BeirFormatError(
                f"{path}:{lineno}: '_id' must be a string or an integer, got "
                f"{type(_id).__name__} {_id!r}"
            )
        yield lineno, obj


def text_field(path: Path, lineno: int, obj: dict, name: str, required: bool) -> str:
    """A string field of a corpus or query line. A missing required field, or a number or a
    list where text belongs, is an error: stringified, it would be embedded as if it were text."""
    if name not in obj or obj[name] is None:
        if required:
            raise BeirFormatError(f"{path}:{lineno}: no {name!r} field (id {obj['_id']!r})")
        return ""
    value = obj[name]
    if not isinstance(value, str):
        raise BeirFormatError(
            f"{path}:{lineno}: {name!r} must be a string, got {type(value).__name__} "
            f"(id {obj['_id']!r})"
        )
    return value


def _score(path: Path, lineno: int, text: str) -> int | None:
    """A graded relevance: an integer (``2``, ``2.0``). None for a non-numeric first line
    (a header); a fraction or any other text is an error, never truncated or dropped."""
    try:
        value = float(text)
    except ValueError:
        if lineno == 1:
            return None
        raise BeirFormatError(f"{path}:{lineno}: non-numeric score {text!r}") from None
    if not value.is_integer():
        raise BeirFormatError(
            f"{path}:{lineno}: score {text!r} is not an integer; qrels grades are integers "
            "(0 = not relevant)"
        )
    return int(value)


def _fields(path: Path, lineno: int, line: str) -> list[str]:
    """(query-id, corpus-id, score). BEIR files are tab-separated; TREC originals use spaces and
    four fields, ``query-id iteration corpus-id score``, with an integer or ``Q0`` iteration."""
    parts = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
    if len(parts) == 4:
        iteration = parts[1].strip()
        if not (iteration.lstrip("-").isdigit() or iteration == "Q0"):
            raise BeirFormatError(
                f"{path}:{lineno}: 4 fields, but not TREC's layout 'query-id iteration "
                f"corpus-id score' (the iteration must be an integer or Q0, got {iteration!r}); "
                "BEIR qrels have 3 fields"
            )
        parts = [parts[0], parts[2], parts[3]]
    if len(parts) != 3:
        raise BeirFormatError(
            f"{path}:{lineno}: expected 3 fields (query-id, corpus-id, score), got {len(parts)}"
        )
    return [p.strip() for p in parts]


def read_qrels(path: Path) -> pl.DataFrame:
    """query_id, doc_id, score; a header line is optional (real files vary). A (query, doc)
    pair judged twice is an error naming both lines: which grade would count is not knowable."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: qrels file not found")
    rows: list[tuple[str, str, int]] = []
    first: dict[tuple[str, str], int] = {}
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        qid, did, text = _fields(path, lineno, line)
        score = _score(path, lineno, text)
        if score is None:  # the header line
            continue
        if (qid, did) in first:
            raise BeirFormatError(
                f"{path}:{lineno}: query {qid!r} and doc {did!r} judged twice (first at line "
                f"{first[qid, did]})"
            )
        first[qid, did] = lineno
        rows.append((qid, did, score))
    if not rows:
        raise BeirFormatError(f"{path}: no judgements")
    return pl.DataFrame(rows, schema=["query_id", "doc_id", "score"], orient="row")


def _read_queries(path: Path, wanted: set[str]) -> pl.DataFrame:
    seen: dict[str, int] = {}
    ids, texts = [], []
    for lineno, obj in iter_jsonl(path):
        qid = str(obj["_id"])
        if qid in seen:
            raise BeirFormatError(
                f"{path}:{lineno}: duplicate query id {qid!r} (first at line {seen[qid]})"
            )
        seen[qid] = lineno
        text = text_field(path, lineno, obj, "text", required=True)
        if qid in wanted:
            ids.append(qid)
            texts.append(text)
    missing = wanted - set(ids)
    if missing:
        example = sorted(missing)[:5]
        raise BeirFormatError(
            f"{path}: {len(missing)} query ids judged in the qrels are not in queries.jsonl "
            f"(e.g. {example})"
        )
    return pl.DataFrame({"query_id": ids, "text": texts})


def _id_hash(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little")


def _raise_duplicate(path: Path, suspect_hashes: set[int]) -> None:
    """Second pass over the few ids whose hash repeats: name the lines of a real duplicate."""
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        did = str(obj["_id"])
        if _id_hash(did) not in suspect_hashes:
            continue
        if did in first_line:
            raise BeirFormatError(
                f"{path}:{lineno}: duplicate doc id {did!r} (first at line {first_line[did]})"
            )
        first_line[did] = lineno


def _select_rows(path: Path, judged: set[str], sample_size: int | None, seed: int):
    """Pass 1: count lines, find judged lines, check ids; then choose the rows to keep.

    Only 8 bytes per line are held (a hash of the id, and the line number of unjudged lines), so
    an 8.8M-line corpus costs about 140 MB here, not gigabytes of Python strings.
    """
    hashes, other_lines = array("Q"), array("Q")
    judged_lines: list[int] = []
    judged_found: set[str] = set()
    for lineno, obj in iter_jsonl(path):
        did = str(obj["_id"])
        hashes.append(_id_hash(did))
        if did in judged:
            judged_lines.append(lineno)
            judged_found.add(did)
        else:
            other_lines.append(lineno)
    n_total = len(hashes)
    if n_total == 0:
        raise BeirFormatError(f"{path}: empty corpus")
    unique, counts = np.unique(np.frombuffer(hashes, dtype=np.uint64), return_counts=True)
    if (counts > 1).any():
        _raise_duplicate(path, {int(h) for h in unique[counts > 1]})
    others = np.frombuffer(other_lines, dtype=np.uint64)  # a view: no copy unless sampling
    return sample_rows(judged_lines, others, sample_size, seed), n_total, judged_found


def sample_rows(judged, others, sample_size: int | None, seed: int) -> set[int] | None:
    """The rows a sample of ``sample_size`` keeps: every judged row and a seeded draw of the
    others (None: keep all). Every source samples by this rule, so a sample means one thing."""
    if sample_size is None or sample_size >= len(judged) + len(others):
        return None
    n_extra = max(sample_size - len(judged), 0)
    rng = np.random.default_rng(seed)
    others = np.asarray(others).astype(np.int64)
    extra = rng.choice(others, size=n_extra, replace=False) if n_extra else []
    return set(judged) | {int(x) for x in extra}


def load_collection(folder: Path, split: str, sample_size: int | None, seed: int) -> Collection:
    """Read (and subsample) one BEIR collection; counts of what was skipped go to ``stats``."""
    folder = Path(folder)
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    qrels = qrels.filter(pl.col("score") > 0)
    judged_docs = set(qrels["doc_id"].to_list())
    corpus_path = folder / "corpus.jsonl"
    if not corpus_path.exists():
        raise FileNotFoundError(f"{corpus_path}: corpus file not found")
    keep, n_total, judged_found = _select_rows(corpus_path, judged_docs, sample_size, seed)
    ids, titles, texts = [], [], []
    for lineno, obj in iter_jsonl(corpus_path):
        if keep is None or lineno in keep:
            ids.append(str(obj["_id"]))
            titles.append(text_field(corpus_path, lineno, obj, "title", required=False))
            texts.append(text_field(corpus_path, lineno, obj, "text", required=True))
    corpus = pl.DataFrame({"doc_id": ids, "title": titles, "text": texts})
    unknown_docs = qrels.filter(~pl.col("doc_id").is_in(list(judged_found)))
    qrels = qrels.filter(pl.col("doc_id").is_in(ids))
    queries = _read_queries(folder / "queries.jsonl", set(qrels["query_id"].to_list()))
    if queries.height == 0:
        raise BeirFormatError(f"{folder}: no judged queries in split {split!r}")
    stats = {
        "corpus_lines": n_total,
        "corpus_kept": corpus.height,
        "sampled": keep is not None,
        "queries": queries.height,
        "qrels_pairs": qrels.height,
        "qrels_unknown_doc_ids_skipped": unknown_docs.height,
        "empty_documents": int(sum(1 for t, x in zip(titles, texts, strict=True) if not (t or x))),
    }
    return Collection(corpus=corpus, queries=queries, qrels=qrels, stats=stats)


def passage_texts(corpus: pl.DataFrame, prompt: str = "") -> list[str]:
    """'title text' as BEIR and MTEB join them, with the model's passage prompt in front."""
    return [
        prompt + f"{t} {x}".strip()
        for t, x in zip(corpus["title"].to_list(), corpus["text"].to_list(), strict=True)
    ]
