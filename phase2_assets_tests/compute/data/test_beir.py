"""BEIR-format reading: tiny folders written into tmp_path, errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from phase2_assets.compute.data import beir, sources

HEADER = "query-id\tcorpus-id\tscore\n"
SHARED_DL19 = Path("/work/shared/datasets/msmarco_dl19_subset")


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _make(
    root: Path,
    *,
    n_docs: int = 6,
    corpus: str | None = None,
    queries: str | None = None,
    qrels: str | None = None,
    split: str = "test",
) -> Path:
    """A BEIR folder: docs d0..d{n-1}, queries q1..q3, qrels judging q1->d1 (2), q2->d3 (1)."""
    root.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = _jsonl(
            [{"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(n_docs)]
        )
    if queries is None:
        queries = _jsonl([{"_id": f"q{i}", "text": f"query {i}"} for i in (1, 2, 3)])
    if qrels is None:
        qrels = HEADER + "q1\td1\t2\nq2\td3\t1\nq3\td2\t0\n"
    (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text(queries, encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels, encoding="utf-8")
    return root


# ---- loading -----------------------------------------------------------------------------------


def test_load_collection_counts_and_row_order(tmp_path):
    folder = _make(tmp_path / "ds")
    col = beir.load_collection(folder, "test", None, 0)
    assert col.corpus["doc_id"].to_list() == [f"d{i}" for i in range(6)]
    assert col.corpus["title"].to_list()[2] == "T2"
    # q3 is only judged with score 0: not a judged query
    assert col.queries["query_id"].to_list() == ["q1", "q2"]
    assert col.queries["text"].to_list() == ["query 1", "query 2"]
    assert col.qrels.rows() == [("q1", "d1", 2), ("q2", "d3", 1)]
    assert col.stats["corpus_lines"] == 6
    assert col.stats["corpus_kept"] == 6
    assert col.stats["sampled"] is False
    assert col.stats["queries"] == 2
    assert col.stats["qrels_pairs"] == 2
    assert col.stats["qrels_unknown_doc_ids_skipped"] == 0


@pytest.mark.parametrize(
    "qrels",
    [
        "q1\td1\t2\nq2\td3\t1\n",  # no header
        HEADER + "q1\td1\t2\nq2\td3\t1\n",  # BEIR header
        "q1\t0\td1\t2\nq2\t0\td3\t1\n",  # TREC style: qid iter docid score
        "\nq1\td1\t2\n\nq2\td3\t1\n\n",  # blank lines ignored
    ],
    ids=["no-header", "header", "trec-4-col", "blank-lines"],
)
def test_qrels_variants_read_identically(tmp_path, qrels):
    folder = _make(tmp_path / "ds", qrels=qrels)
    col = beir.load_collection(folder, "test", None, 0)
    assert col.qrels.rows() == [("q1", "d1", 2), ("q2", "d3", 1)]


def test_read_qrels_keeps_first_line_when_numeric(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("7\t70\t1\n8\t80\t3\n", encoding="utf-8")
    assert beir.read_qrels(p).rows() == [("7", "70", 1), ("8", "80", 3)]


def test_read_qrels_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        beir.read_qrels(tmp_path / "nope.tsv")


def test_read_qrels_only_header_is_an_error(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text(HEADER, encoding="utf-8")
    with pytest.raises(beir.BeirFormatError, match="no judgements"):
        beir.read_qrels(p)


# ---- errors name file and line -----------------------------------------------------------------


def test_malformed_json_line_names_file_and_line(tmp_path):
    corpus = _jsonl([{"_id": "d0", "text": "a"}, {"_id": "d1", "text": "b"}]) + '{"_id": "d2", \n'
    folder = _make(tmp_path / "ds", corpus=corpus)
    with pytest.raises(beir.BeirFormatError) as exc:
        beir.load_collection(folder, "test", None, 0)
    assert "corpus.jsonl:3" in str(exc.value)
    assert str(exc.value).startswith(str(folder / "corpus.jsonl"))


def test_object_without_id_names_line(tmp_path):
    corpus = _jsonl([{"_id": "d0", "text": "a"}, {"text": "no id"}])
    folder = _make(tmp_path / "ds", corpus=corpus)
    with pytest.raises(beir.BeirFormatError, match=r"corpus\.jsonl:2: .*'_id'"):
        beir.load_collection(folder, "test", None, 0)


def test_duplicate_doc_id_names_both_lines(tmp_path):
    corpus = _jsonl(
        [{"_id": "d0"}, {"_id": "d1"}, {"_id": "d2"}, {"_id": "d3"}, {"_id": "d1", "text": "again"}]
    )
    folder = _make(tmp_path / "ds", corpus=corpus)
    with pytest.raises(beir.BeirFormatError) as exc:
        beir.load_collection(folder, "test", None, 0)
    msg = str(exc.value)
    assert "corpus.jsonl:5" in msg
    assert "'d1'" in msg
    assert "first at line 2" in msg


def test_duplicate_query_id_names_line(tmp_path):
    queries = _jsonl([{"_id": q, "text": "x"} for q in ("q1", "q2", "q1")])
    folder = _make(tmp_path / "ds", queries=queries)
    with pytest.raises(beir.BeirFormatError, match=r"queries\.jsonl:3: duplicate query id 'q1'"):
        beir.load_collection(folder, "test", None, 0)


# ---- issue 18: nothing silent ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "message"),
    [("0.5", "score '0.5' is not an integer"), ("1.5", "score '1.5' is not an integer")],
)
def test_fractional_grade_is_an_error_not_truncated(tmp_path, score, message):
    """Before: int(float(s)) made 0.5 a 0 (dropped as not relevant) and 1.5 a 1, exit 0."""
    folder = _make(tmp_path / "ds", qrels=HEADER + f"q1\td1\t2\nq2\td3\t{score}\n")
    with pytest.raises(beir.BeirFormatError, match=rf"test\.tsv:3: {message}"):
        beir.load_collection(folder, "test", None, 0)


def test_integral_float_grade_is_read_as_that_integer(tmp_path):
    folder = _make(tmp_path / "ds", qrels=HEADER + "q1\td1\t2.0\nq2\td3\t1\n")
    assert sorted(beir.load_collection(folder, "test", None, 0).qrels.rows()) == [
        ("q1", "d1", 2),
        ("q2", "d3", 1),
    ]


def test_a_pair_judged_twice_is_an_error_naming_both_lines(tmp_path):
    folder = _make(tmp_path / "ds", qrels=HEADER + "q1\td1\t2\nq2\td3\t1\nq1\td1\t0\n")
    with pytest.raises(
        beir.BeirFormatError,
        match=r"test\.tsv:4: query 'q1' and doc 'd1' judged twice \(first at line 2\)",
    ):
        beir.load_collection(folder, "test", None, 0)


@pytest.mark.parametrize("extra", ["note", "7"])
def test_a_fourth_column_that_is_not_trec_layout_is_refused(tmp_path, extra):
    """Before: 'q1<TAB>d1<TAB>2<TAB>note' was read as TREC (doc 2, score 'note')."""
    folder = _make(tmp_path / "ds", qrels=f"q1\td1\t2\t{extra}\nq2\td3\t1\t{extra}\n")
    with pytest.raises(beir.BeirFormatError, match=r"test\.tsv:1: 4 fields, but not TREC's layout"):
        beir.load_collection(folder, "test", None, 0)


def test_trec_layout_with_q0_is_read(tmp_path):
    folder = _make(tmp_path / "ds", qrels="q1 Q0 d1 2\nq2 Q0 d3 1\n")
    assert sorted(beir.load_collection(folder, "test", None, 0).qrels.rows()) == [
        ("q1", "d1", 2),
        ("q2", "d3", 1),
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"_id": 77.0, "text": "x"}, "'_id' must be a string or an integer, got float 77.0"),
        ({"_id": None, "text": "x"}, "'_id' must be a string or an integer, got NoneType"),
        ({"_id": True, "text": "x"}, "'_id' must be a string or an integer, got bool"),
        ({"_id": "d9"}, "no 'text' field \\(id 'd9'\\)"),
        ({"_id": "d9", "text": 42}, "'text' must be a string, got int"),
        ({"_id": "d9", "text": "x", "title": ["a", "b"]}, "'title' must be a string, got list"),
    ],
)
def test_corpus_fields_are_checked_not_coerced(tmp_path, doc, message):
    """Before: 77.0 became '77.0', null 'None', a missing text an empty passage, 42 '42'."""
    rows = [{"_id": f"d{i}", "title": "", "text": f"t {i}"} for i in range(6)] + [doc]
    folder = _make(tmp_path / "ds", corpus=_jsonl(rows))
    with pytest.raises(beir.BeirFormatError, match=rf"corpus\.jsonl:7: {message}"):
        beir.load_collection(folder, "test", None, 0)


def test_integer_ids_and_empty_text_are_allowed_and_empty_ones_counted(tmp_path):
    rows = [{"_id": i, "text": f"t {i}"} for i in range(6)] + [{"_id": 6, "text": ""}]
    folder = _make(tmp_path / "ds", corpus=_jsonl(rows), qrels="q1\t1\t2\nq2\t3\t1\n")
    col = beir.load_collection(folder, "test", None, 0)
    assert col.corpus["doc_id"].to_list() == [str(i) for i in range(7)]
    assert col.stats["empty_documents"] == 1


def test_query_text_must_be_a_string(tmp_path):
    queries = _jsonl([{"_id": "q1", "text": "x"}, {"_id": "q2", "text": 5}, {"_id": "q3"}])
    folder = _make(tmp_path / "ds", queries=queries)
    with pytest.raises(beir.BeirFormatError, match=r"queries\.jsonl:2: 'text' must be a string"):
        beir.load_collection(folder, "test", None, 0)


def test_a_byte_that_is_not_utf8_is_named_by_line_and_column(tmp_path):
    """Before: UnicodeDecodeError '... position 225' with no line."""
    folder = _make(tmp_path / "ds")
    lines = (folder / "corpus.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = b'{"_id": "d3", "text": "caf\xe9"}\n'
    (folder / "corpus.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(
        beir.BeirFormatError, match=r"corpus\.jsonl:4: not UTF-8 \(byte 0xe9 at column 27\)"
    ):
        beir.load_collection(folder, "test", None, 0)


def test_empty_corpus_raises(tmp_path):
    folder = _make(tmp_path / "ds", corpus="\n\n")
    with pytest.raises(beir.BeirFormatError, match="empty corpus"):
        beir.load_collection(folder, "test", None, 0)


def test_missing_corpus_file_raises(tmp_path):
    folder = _make(tmp_path / "ds")
    (folder / "corpus.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="corpus.jsonl"):
        beir.load_collection(folder, "test", None, 0)


def test_non_numeric_score_after_header_names_line(tmp_path):
    folder = _make(tmp_path / "ds", qrels=HEADER + "q1\td1\t2\nq2\td3\thigh\n")
    with pytest.raises(beir.BeirFormatError) as exc:
        beir.load_collection(folder, "test", None, 0)
    assert "test.tsv:3" in str(exc.value)
    assert "'high'" in str(exc.value)


def test_wrong_field_count_names_line(tmp_path):
    folder = _make(tmp_path / "ds", qrels="q1\td1\t2\nq2\td3\n")
    with pytest.raises(beir.BeirFormatError, match=r"test\.tsv:2: expected 3 fields"):
        beir.load_collection(folder, "test", None, 0)


def test_space_separated_trec_qrels_are_read(tmp_path):
    folder = _make(tmp_path / "ds", qrels="q1 0 d1 2\nq2 0 d3 1\n")
    col = beir.load_collection(folder, "test", None, 0)
    assert sorted(col.qrels.rows()) == [("q1", "d1", 2), ("q2", "d3", 1)]


def test_unknown_qrels_doc_is_skipped_and_counted(tmp_path):
    folder = _make(tmp_path / "ds", qrels=HEADER + "q1\td1\t2\nq1\tghost\t1\nq2\tghost2\t1\n")
    col = beir.load_collection(folder, "test", None, 0)
    assert col.stats["qrels_unknown_doc_ids_skipped"] == 2
    assert col.qrels.rows() == [("q1", "d1", 2)]
    # q2's only judged doc is unknown, so q2 is no longer a judged query
    assert col.queries["query_id"].to_list() == ["q1"]


def test_qrels_query_missing_from_queries_raises(tmp_path):
    folder = _make(tmp_path / "ds", qrels="q1\td1\t2\nq9\td2\t1\n")
    with pytest.raises(beir.BeirFormatError) as exc:
        beir.load_collection(folder, "test", None, 0)
    assert "queries.jsonl" in str(exc.value)
    assert "q9" in str(exc.value)


def test_no_judged_queries_in_split_raises(tmp_path):
    folder = _make(tmp_path / "ds", qrels="q1\td1\t0\nq2\td2\t0\n")
    with pytest.raises(beir.BeirFormatError, match="no judged queries"):
        beir.load_collection(folder, "test", None, 0)


# ---- subsampling -------------------------------------------------------------------------------


def _big(tmp_path: Path) -> Path:
    qrels = "q1\td5\t1\nq1\td17\t2\nq2\td33\t1\nq3\td48\t1\n"
    return _make(tmp_path / "big", n_docs=50, qrels=qrels)


def test_subsample_keeps_judged_docs_and_exact_size(tmp_path):
    folder = _big(tmp_path)
    col = beir.load_collection(folder, "test", 10, seed=13)
    ids = col.corpus["doc_id"].to_list()
    assert len(ids) == 10
    assert {"d5", "d17", "d33", "d48"} <= set(ids)
    # row order follows the file
    assert ids == sorted(ids, key=lambda d: int(d[1:]))
    assert col.stats["sampled"] is True
    assert col.stats["corpus_lines"] == 50
    assert col.stats["corpus_kept"] == 10
    assert col.qrels.height == 4


def test_subsample_deterministic_per_seed_and_differs_between_seeds(tmp_path):
    folder = _big(tmp_path)
    a = beir.load_collection(folder, "test", 10, seed=13).corpus["doc_id"].to_list()
    b = beir.load_collection(folder, "test", 10, seed=13).corpus["doc_id"].to_list()
    c = beir.load_collection(folder, "test", 10, seed=14).corpus["doc_id"].to_list()
    assert a == b
    assert a != c


def test_sample_size_at_least_corpus_keeps_everything(tmp_path):
    folder = _big(tmp_path)
    col = beir.load_collection(folder, "test", 50, seed=1)
    assert col.corpus.height == 50
    assert col.stats["sampled"] is False


def test_sample_smaller_than_judged_keeps_all_judged(tmp_path):
    folder = _big(tmp_path)
    col = beir.load_collection(folder, "test", 2, seed=1)
    assert col.corpus["doc_id"].to_list() == ["d5", "d17", "d33", "d48"]


# ---- sources -----------------------------------------------------------------------------------


def _resolve(name, **kw):
    """The folder the registered sources find, as the collection asset asks them."""
    return sources.locate(sources.Request(name=name, split="test", sample_size=None, seed=0, **kw))[
        1
    ]


def test_resolve_source_without_local_copy_and_no_download_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="PHASE2_BEIR_DIR"):
        _resolve("scifact", download_dir=tmp_path / "dl", allow_download=False)
    with pytest.raises(FileNotFoundError, match="PHASE2_BEIR_DIR") as exc:
        _resolve(
            "scifact",
            beir_dir=str(tmp_path / "beir"),
            download_dir=tmp_path / "dl",
            allow_download=False,
        )
    assert str(tmp_path / "beir" / "scifact") in str(exc.value)


def test_resolve_source_finds_beir_dir_folder_by_beir_name(tmp_path):
    (tmp_path / "beir" / "scifact-v2").mkdir(parents=True)
    got = _resolve(
        "scifact",
        beir_name="scifact-v2",
        beir_dir=str(tmp_path / "beir"),
        download_dir=tmp_path / "dl",
        allow_download=False,
    )
    assert got == tmp_path / "beir" / "scifact-v2"


def test_resolve_source_explicit_path(tmp_path):
    folder = _make(tmp_path / "mine")
    assert _resolve("x", path=str(folder), download_dir=tmp_path, allow_download=False) == folder
    with pytest.raises(FileNotFoundError, match="not a folder"):
        _resolve("x", path=str(tmp_path / "absent"), download_dir=tmp_path, allow_download=False)


def test_resolve_source_reuses_earlier_download(tmp_path):
    target = _make(tmp_path / "dl" / "nq")
    got = _resolve("nq", download_dir=tmp_path / "dl", allow_download=False)
    assert got == target


# ---- passage texts -----------------------------------------------------------------------------


def test_passage_texts_join_strip_and_prompt():
    corpus = pl.DataFrame(
        {"doc_id": ["a", "b", "c"], "title": ["Title", "", "T"], "text": ["body", "only", ""]}
    )
    assert beir.passage_texts(corpus) == ["Title body", "only", "T"]
    assert beir.passage_texts(corpus, "passage: ") == [
        "passage: Title body",
        "passage: only",
        "passage: T",
    ]


# ---- the shared real subset (read-only, skipped when absent) -------------------------------------


@pytest.mark.skipif(not SHARED_DL19.is_dir(), reason="shared msmarco_dl19_subset not present")
def test_shared_msmarco_dl19_subset_loads():
    col = beir.load_collection(SHARED_DL19, "test", None, 0)
    assert col.corpus.height == 5000
    # No header line: the first judgement must be kept, so all 4,102 pairs survive.
    assert col.qrels.height == 4102
    assert col.qrels.row(0) == ("19335", "1720389", 1)
    assert col.queries.height == 43
    assert col.stats["qrels_unknown_doc_ids_skipped"] == 0
