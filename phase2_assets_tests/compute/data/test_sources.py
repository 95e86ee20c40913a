"""The dataset sources' registry: the BEIR sources asked last, one sampling rule for all."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from phase2_assets.compute.data import beir, sources
from phase2_assets.testing.tiny import write_tiny_beir


def _request(**kw) -> sources.Request:
    args = {"name": "tiny", "split": "test", "sample_size": None, "seed": 13}
    args.update({"download_dir": Path("/nonexistent"), "allow_download": False, **kw})
    return sources.Request(**args)


def _frames(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    corpus = pl.read_ndjson(folder / "corpus.jsonl").rename({"_id": "doc_id"})
    queries = pl.read_ndjson(folder / "queries.jsonl").rename({"_id": "query_id"})
    qrels = pl.read_csv(folder / "qrels" / "test.tsv", separator="\t").rename(
        {"query-id": "query_id", "corpus-id": "doc_id"}
    )
    return corpus, queries, qrels


def test_the_built_in_sources_are_asked_last_folder_first():
    assert [s.kind for s in sources.asked()][-2:] == ["beir_folder", "beir_zip"]


def test_a_registered_source_is_asked_before_the_beir_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(sources.base, "SOURCES", dict(sources.SOURCES))
    monkeypatch.setattr(sources, "SOURCES", sources.base.SOURCES)

    @sources.register
    class Everything(sources.Source):
        kind = "everything"

        def locate(self, request):
            return tmp_path

    assert [s.kind for s in sources.asked()] == ["everything", "beir_folder", "beir_zip"]
    assert sources.locate(_request(path=str(tmp_path)))[0].kind == "everything"
    with pytest.raises(ValueError, match="'everything' registered twice"):
        sources.register(Everything)


def test_a_path_is_a_beir_folder_and_a_name_alone_the_download(tmp_path):
    folder = write_tiny_beir(tmp_path / "tiny", n_docs=40)
    source, found, coll = sources.load(_request(path=str(folder)))
    assert (source.kind, found) == ("beir_folder", folder)
    assert coll.corpus.height == 40
    with pytest.raises(FileNotFoundError, match="downloads are disabled"):
        sources.load(_request())


@pytest.mark.parametrize("sample_size", [None, 50, 5])
def test_whole_tables_give_the_beir_readers_collection(tmp_path, sample_size):
    """The same rules and the same seeded sample, whichever way the files are read."""
    folder = write_tiny_beir(tmp_path / "tiny", n_docs=120)
    streamed = beir.load_collection(folder, "test", sample_size, 13)
    whole = sources.from_frames(*_frames(folder), _request(sample_size=sample_size))
    for table in ("corpus", "queries", "qrels"):
        assert getattr(whole, table).equals(getattr(streamed, table)), table
    assert whole.stats == streamed.stats


def test_whole_tables_refuse_a_repeated_passage_and_an_unknown_query(tmp_path):
    corpus, queries, qrels = _frames(write_tiny_beir(tmp_path / "tiny", n_docs=40))
    with pytest.raises(ValueError, match="duplicate doc id 'd0'"):
        sources.from_frames(pl.concat([corpus, corpus.head(1)]), queries, qrels, _request())
    with pytest.raises(ValueError, match="judged in the qrels have no query text"):
        sources.from_frames(corpus, queries.tail(-1), qrels, _request())
