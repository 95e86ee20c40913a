"""docs/extending/a-dataset-source.md's recipe, run as written: the module dropped into the
sources folder is registered with nothing else edited, and a study's collection asset reads a
TSV folder through it into the same tables as the BEIR folder it was written from."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from phase2_assets.compute.data import beir, sources
from phase2_assets.testing import recipes
from phase2_assets.testing.recipes import doc_block


def recipe() -> str:
    return doc_block("extending/a-dataset-source.md", "docs-source")


@pytest.fixture
def dropped_in(tmp_path):
    """``tsv_folder.py`` in a folder that is part of the sources package, then discovered."""
    with recipes.dropped_in(
        sources, "tsv_folder", recipe(), tmp_path / "sources", sources.SOURCES, "tsv_folder"
    ) as imported:
        yield imported


def as_tsv(beir_folder: Path, out: Path) -> Path:
    """The BEIR collection rewritten in the recipe's layout."""
    (out / "qrels").mkdir(parents=True)
    coll = beir.load_collection(beir_folder, "test", None, 0)
    coll.corpus.write_csv(out / "corpus.tsv", separator="\t", quote_style="never")
    coll.queries.write_csv(out / "queries.tsv", separator="\t", quote_style="never")
    qrels = pl.read_csv(beir_folder / "qrels" / "test.tsv", separator="\t", infer_schema=False)
    qrels.columns = ["query_id", "doc_id", "score"]
    qrels.write_csv(out / "qrels" / "test.tsv", separator="\t", quote_style="never")
    return out


def test_the_dropped_in_source_reads_its_folders_and_leaves_beir_folders(
    dropped_in, tmp_path, tiny_beir
):
    assert "tsv_folder" in dropped_in
    folder = as_tsv(tiny_beir, tmp_path / "tsv")
    request = sources.Request(
        name="tiny",
        split="test",
        sample_size=100,
        seed=13,
        download_dir=tmp_path / "dl",
        allow_download=False,
        path=str(folder),
    )
    source, found, coll = sources.load(request)
    assert (source.kind, found) == ("tsv_folder", folder)
    expected = beir.load_collection(tiny_beir, "test", 100, 13)
    assert coll.corpus.equals(expected.corpus) and coll.qrels.equals(expected.qrels)
    assert coll.stats == expected.stats
    beir_request = sources.Request(**{**vars(request), "path": str(tiny_beir)})
    assert sources.locate(beir_request)[0].kind == "beir_folder"


def test_a_study_reads_a_tsv_folder_through_the_collection_asset(
    dropped_in, tmp_path, tiny_beir, tiny_model
):
    from phase2_assets.testing import graph as gh
    from phase2_assets.testing.tiny import write_tiny_study

    tables = {}
    for name, folder in (("beir", tiny_beir), ("tsv", as_tsv(tiny_beir, tmp_path / "tsv"))):
        path = write_tiny_study(tmp_path / f"{name}.yaml", folder, tiny_model)
        study, defs = gh.build(path, tmp_path / name)
        assert gh.materialize(defs, "dataset", "tiny").success
        tables[name] = {
            t: pl.read_parquet(tmp_path / name / t / "tiny.parquet")
            for t in ("corpus", "queries", "qrels")
        }
    for t in ("corpus", "queries", "qrels"):
        assert tables["tsv"][t].equals(tables["beir"][t]), t
