"""The study config: bundled files, derived partitions, hashing and strict validation."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from phase2_assets.config import plan
from phase2_assets.config import study as study_mod
from phase2_assets.config.study import StudyConfigError, load_study

BASE = {
    "name": "tiny",
    "datasets": {"scifact": {"beir_name": "scifact"}, "nq": {"sample_size": 1000}},
    "models": {
        "minilm": {"name": "sentence-transformers/all-MiniLM-L6-v2", "dim": 384},
        "e5": {"name": "intfloat/e5-base-v2", "dim": 768},
    },
    "tiers": {
        "t1": {
            "datasets": ["scifact", "nq"],
            "models": ["minilm"],
            "bits": [64, 128],
            "pq_bytes": [8, 16],
        },
        "t2": {"datasets": ["scifact"], "models": ["e5"], "bits": [256], "pq_bytes": [32]},
    },
}


def _write(tmp_path: Path, data: dict | str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return p


def _error(tmp_path: Path, data: dict | str) -> tuple[str, Path]:
    p = _write(tmp_path, data)
    with pytest.raises(StudyConfigError) as exc:
        load_study(p)
    msg = str(exc.value)
    assert str(p) in msg  # every error names the file
    return msg, p


# ---- bundled studies ---------------------------------------------------------------------------


def test_demo_study():
    s = load_study("demo")
    assert s.name == "demo"
    assert s.pairs() == ["scifact__minilm"]
    assert s.all_bits() == [64, 128, 256, 512]
    assert plan.partition_keys(s, "bits") == [f"{b}|scifact__minilm" for b in (64, 128, 256, 512)]
    assert s.plan("scifact__minilm") == ({64, 128, 256, 512}, {8, 16, 32, 64})
    assert s.models["minilm"].dim == 384


def test_full_study_pairs_and_tier2_plan():
    s = load_study("study")
    tier1 = {f"{d}__{m}" for d in ("msmarco", "nq", "scifact") for m in ("minilm", "e5-base")}
    tier2 = {"msmarco__bge-large", "scifact__bge-large"}
    assert s.pairs() == sorted(tier1 | tier2)
    assert "nq__bge-large" not in s.pairs()
    assert s.plan("msmarco__bge-large") == ({128, 256, 512}, {16, 32})
    assert s.plan("nq__minilm") == ({64, 128, 256, 512}, {8, 16, 32, 64})
    assert s.dataset_names() == ["msmarco", "nq", "scifact"]
    parts = plan.partition_keys(s, "bits")
    assert "64|msmarco__bge-large" not in parts  # neither binary-64 nor pq-8 planned there
    assert "128|msmarco__bge-large" in parts
    assert len(parts) == 6 * 4 + 2 * 3


def test_default_study_is_env_then_full_plan(monkeypatch):
    monkeypatch.delenv("PHASE2_STUDY", raising=False)
    assert load_study().name == "phase2"
    monkeypatch.setenv("PHASE2_STUDY", "demo")
    assert load_study().name == "demo"


def test_config_hash_stable_and_sensitive(tmp_path):
    assert load_study("demo").config_hash() == load_study("demo").config_hash()
    a = load_study(_write(tmp_path, BASE, "a.yaml"))
    # comments and key order do not change the hash
    reordered = "# a comment\n" + yaml.safe_dump(
        dict(reversed(list(BASE.items()))), sort_keys=False
    )
    b = load_study(_write(tmp_path, reordered, "b.yaml"))
    assert a.config_hash() == b.config_hash()
    assert len(a.config_hash()) == 16
    changed = copy.deepcopy(BASE)
    changed["seeds"] = {"projection": 43}
    c = load_study(_write(tmp_path, changed, "c.yaml"))
    assert c.config_hash() != a.config_hash()
    same_default = copy.deepcopy(BASE)
    same_default["seeds"] = {"projection": 42}  # the default value: same validated config
    assert load_study(_write(tmp_path, same_default, "d.yaml")).config_hash() == a.config_hash()


def test_tiny_study_derived_views(tmp_path):
    s = load_study(_write(tmp_path, BASE))
    assert s.pairs() == ["nq__minilm", "scifact__e5", "scifact__minilm"]
    assert s.all_bits() == [64, 128, 256]
    assert s.plan("scifact__e5") == ({256}, {32})
    assert plan.partition_keys(s, "bits") == [
        "64|nq__minilm",
        "128|nq__minilm",
        "256|scifact__e5",
        "64|scifact__minilm",
        "128|scifact__minilm",
    ]
    assert s.pair_to_dataset()["scifact__e5"] == "scifact"


def test_pair_key_round_trip_and_bad_key():
    assert study_mod.split_pair(study_mod.pair_key("nq", "e5-base")) == ("nq", "e5-base")
    for bad in ("nq", "nq__", "__e5"):
        with pytest.raises(ValueError):
            study_mod.split_pair(bad)


# ---- validation errors ---------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    data = copy.deepcopy(BASE)
    data["seedz"] = {"projection": 1}
    msg, _ = _error(tmp_path, data)
    assert "seedz" in msg


def test_unknown_key_inside_a_model(tmp_path):
    data = copy.deepcopy(BASE)
    data["models"]["minilm"]["dimension"] = 384
    msg, _ = _error(tmp_path, data)
    assert "models.minilm.dimension" in msg


def test_tier_names_unknown_dataset(tmp_path):
    data = copy.deepcopy(BASE)
    data["tiers"]["t1"]["datasets"].append("fiqa")
    msg, _ = _error(tmp_path, data)
    assert "'fiqa'" in msg
    assert "'t1'" in msg


def test_tier_names_unknown_model(tmp_path):
    data = copy.deepcopy(BASE)
    data["tiers"]["t2"]["models"] = ["bge-large"]
    msg, _ = _error(tmp_path, data)
    assert "'bge-large'" in msg
    assert "'t2'" in msg


@pytest.mark.parametrize("bits", [12, 4104, 0])
def test_bad_bits(tmp_path, bits):
    data = copy.deepcopy(BASE)
    data["tiers"]["t1"]["bits"] = [64, bits]
    msg, _ = _error(tmp_path, data)
    assert "tiers.t1.bits" in msg
    assert f"bits {bits} " in msg


def test_bits_at_max_is_accepted(tmp_path):
    data = copy.deepcopy(BASE)
    data["tiers"]["t1"]["bits"] = [4096, 8, 8]
    s = load_study(_write(tmp_path, data))
    assert s.tiers["t1"].bits == [8, 4096]  # sorted, de-duplicated


def test_pq_bytes_not_dividing_model_dim(tmp_path):
    data = copy.deepcopy(BASE)
    data["tiers"]["t2"]["pq_bytes"] = [32, 7]  # 768 % 7 != 0
    msg, _ = _error(tmp_path, data)
    assert "pq_bytes 7" in msg
    assert "'e5'" in msg


@pytest.mark.parametrize("bad", ["a/b", "..x", "x..y", "sci__fact", "SciFact", "-x"])
def test_bad_dataset_name(tmp_path, bad):
    data = copy.deepcopy(BASE)
    data["datasets"][bad] = {}
    data["tiers"]["t1"]["datasets"].append(bad)
    msg, _ = _error(tmp_path, data)
    assert repr(bad) in msg


def test_bad_model_name(tmp_path):
    data = copy.deepcopy(BASE)
    data["models"]["mini__lm"] = data["models"].pop("minilm")
    data["tiers"]["t1"]["models"] = ["mini__lm"]
    msg, _ = _error(tmp_path, data)
    assert "'mini__lm'" in msg


def test_no_tiers(tmp_path):
    data = copy.deepcopy(BASE)
    data["tiers"] = {}
    msg, _ = _error(tmp_path, data)
    assert "tier" in msg


def test_invalid_yaml(tmp_path):
    msg, _ = _error(tmp_path, "name: x\ndatasets: [unclosed\n")
    assert "not valid YAML" in msg


def test_yaml_not_a_mapping(tmp_path):
    msg, _ = _error(tmp_path, "- just\n- a list\n")
    assert "mapping" in msg


def test_missing_yaml_file(tmp_path):
    p = tmp_path / "absent.yaml"
    with pytest.raises(StudyConfigError, match="file not found") as exc:
        load_study(p)
    assert str(p) in str(exc.value)


def test_bundled_name_not_shadowed_by_folder_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    assert load_study("demo").name == "demo"


def test_unknown_bundled_name():
    with pytest.raises(StudyConfigError) as exc:
        load_study("no-such-study")
    msg = str(exc.value)
    assert "'no-such-study'" in msg
    assert "demo" in msg and "study" in msg  # lists the bundled names


@pytest.mark.parametrize("bad", ["5f7d1de60b170fc8027bb7898e2efca1", "md5:xyz", "sha1:" + "0" * 40])
def test_a_malformed_download_checksum(tmp_path, bad):
    data = copy.deepcopy(BASE)
    first = next(iter(data["datasets"]))
    data["datasets"][first] = {**(data["datasets"][first] or {}), "checksum": bad}
    msg, _ = _error(tmp_path, data)
    assert f"datasets.{first}.checksum" in msg


def test_each_method_section_is_validated_by_the_methods_own_schema(tmp_path):
    ok = load_study(_write(tmp_path, {**BASE, "methods": {"opq": {"tolerance": 0.01}}}))
    assert ok.methods.params() == {"opq": {"tolerance": 0.01}}
    msg, _ = _error(tmp_path, {**BASE, "methods": {"opq": {"tolerence": 0.01}}})
    assert "methods.opq.tolerence: Extra inputs are not permitted" in msg
    msg, _ = _error(tmp_path, {**BASE, "methods": {"binary_rerank": {"factor": 0}}})
    assert "methods.binary_rerank.factor: Input should be greater than or equal to 1" in msg
    msg, _ = _error(tmp_path, {**BASE, "methods": {"nope": {}}})
    assert "methods.nope: not a registered method" in msg
    # The old flat keys are gone: each parameter lives under its method.
    msg, _ = _error(tmp_path, {**BASE, "methods": {"rerank_factor": 4}})
    assert "methods.rerank_factor: not a registered method" in msg


# ---- issue 18: config gaps that ended in bare tracebacks ----------------------------------------


def test_a_name_with_a_trailing_newline_is_refused(tmp_path):
    """Before: '^...$' matched before the newline, so 'scifact\\n' became a partition key."""
    data = copy.deepcopy(BASE)
    data["datasets"]["scifact\n"] = data["datasets"].pop("scifact")
    data["tiers"]["t1"]["datasets"] = ["scifact\n", "nq"]
    data["tiers"]["t2"]["datasets"] = ["scifact\n"]
    msg, _ = _error(tmp_path, data)
    assert "dataset name 'scifact\\n'" in msg


@pytest.mark.parametrize("bad", ["core tier ü", "tier.1", "Tier1", "t1\n"])
def test_a_tier_name_that_cannot_name_a_sensor_is_refused(tmp_path, bad):
    data = copy.deepcopy(BASE)
    data["tiers"][bad] = data["tiers"].pop("t2")
    msg, _ = _error(tmp_path, data)
    assert f"tier name {bad!r}" in msg


@pytest.mark.parametrize("field", ["datasets", "models", "bits", "pq_bytes"])
def test_an_empty_tier_list_is_refused(tmp_path, field):
    """Before: `datasets: []` ended in an IndexError."""
    data = copy.deepcopy(BASE)
    data["tiers"]["t2"][field] = []
    msg, _ = _error(tmp_path, data)
    assert f"tiers.t2.{field}" in msg and "at least 1" in msg


def test_no_datasets_is_refused(tmp_path):
    data = copy.deepcopy(BASE)
    data["datasets"] = {}
    data["tiers"] = {"t1": {**data["tiers"]["t1"], "datasets": ["nq"]}}
    msg, _ = _error(tmp_path, data)
    assert "at least one dataset" in msg or "unknown dataset" in msg


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    """Before: YAML kept the last of the two silently."""
    text = yaml.safe_dump(BASE, sort_keys=False) + "name: again\n"
    msg, _ = _error(tmp_path, text)
    assert "key 'name' given twice (first on line 1)" in msg and "line" in msg


@pytest.mark.parametrize("bad", ["../../../etc/x", "a/b", "..", "test\n"])
def test_a_split_must_be_a_plain_name(tmp_path, bad):
    """Before: `split: ../../../etc/x` read qrels outside the dataset folder."""
    data = copy.deepcopy(BASE)
    data["datasets"]["nq"]["split"] = bad
    msg, _ = _error(tmp_path, data)
    assert f"split {bad!r} must be a plain name" in msg


# ---- issue 24: names that reach the Markdown memo and metadata -----------------------------------


@pytest.mark.parametrize(
    "bad", ["<script>alert(1)</script>", "a<b>x</b>", "x\n# heading", "| a | b |", "X3", ""]
)
def test_an_adapter_name_with_markup_is_refused_naming_the_key(tmp_path, bad):
    """Before: the adapter's name landed unescaped in design_memo.md and in Markdown metadata."""
    data = copy.deepcopy(BASE)
    data["exploratory"] = {"adapters": [{"name": "ok"}, {"name": bad}]}
    msg, _ = _error(tmp_path, data)
    assert f"exploratory.adapters: Value error, adapters[1].name {bad!r} must be" in msg


@pytest.mark.parametrize("bad", ["<img src=x onerror=alert(1)>", "Study *one*", "s\n"])
def test_a_study_name_with_markup_is_refused_naming_the_key(tmp_path, bad):
    data = copy.deepcopy(BASE)
    data["name"] = bad
    msg, _ = _error(tmp_path, data)
    assert f"name: Value error, study name {bad!r} must be" in msg


def test_plain_adapter_and_study_names_are_accepted(tmp_path):
    data = copy.deepcopy(BASE)
    data["name"] = "phase2.v2-run_1"
    data["exploratory"] = {"adapters": [{"name": "affine_tanh_pearson"}, {"name": "rank-kl.2"}]}
    assert load_study(_write(tmp_path, data)).name == "phase2.v2-run_1"


# ---- the methods' settings: one default each -----------------------------------------------


def _settings_keys() -> dict[tuple[str, str], str]:
    """Which study key each scalar ``Settings`` field is read from, found by setting every key
    to a value of its own and seeing where it lands."""
    from phase2_assets.defs.steps.settings import settings_of

    keys = {
        ("seeds", "projection"),
        ("seeds", "pq_train"),
        ("seeds", "checks"),
        ("seeds", "corpus_sample"),
        ("pq", "train_size"),
        ("retrieval", "query_block"),
        ("retrieval", "corpus_block"),
        ("retrieval", "encode_chunk"),
        ("retrieval", "ground_truth_k"),
    }
    data = copy.deepcopy(BASE)
    marks = {key: 1000 + i for i, key in enumerate(sorted(keys))}
    for (section, key), mark in marks.items():
        data.setdefault(section, {})[key] = mark
    settings = vars(settings_of(study_mod.Study.model_validate(data)))
    found = {key: f for key, mark in marks.items() for f, v in settings.items() if v == mark}
    return {**found, ("pq", "nbits"): "pq_nbits"}  # nbits admits one value, 8


def test_a_study_that_sets_nothing_gives_the_methods_their_own_defaults():
    from dataclasses import replace

    from phase2_assets.compute.methods import Settings
    from phase2_assets.defs.steps.settings import settings_of

    settings = settings_of(study_mod.Study.model_validate(BASE))
    assert replace(settings, check_thresholds={}) == Settings()
    assert len(_settings_keys()) == 7  # every scalar Settings field but the progress callback


def test_no_default_the_methods_read_is_written_in_the_schema():
    """Each key's default in config/study.py is the Settings field it feeds, not a literal."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(study_mod))
    classes = {"seeds": "Seeds", "pq": "PQConfig", "retrieval": "RetrievalConfig"}
    defaults = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in classes.values():
            for field in node.body:
                if isinstance(field, ast.AnnAssign):
                    value = field.value
                    if isinstance(value, ast.Call):  # Field(default, ...)
                        value = value.args[0]
                    defaults[node.name, field.target.id] = ast.unparse(value)
    for (section, key), settings_field in _settings_keys().items():
        assert defaults[classes[section], key] == f"METHOD_DEFAULTS.{settings_field}"


def test_changing_the_methods_default_changes_the_schemas_and_what_the_methods_see():
    """As an edit of ``Settings`` in compute/methods/base.py would (in a fresh interpreter,
    before the schema is built from it): the schema's defaults and the methods' values follow."""
    code = textwrap.dedent(
        """
        import dataclasses, json, sys
        from phase2_assets.compute.methods import base

        @dataclasses.dataclass(frozen=True)
        class Edited(base.Settings):
            projection_seed: int = 99
            corpus_block: int = 1234

        base.Settings = Edited
        from phase2_assets.config.study import Seeds, Study
        from phase2_assets.defs.steps.settings import settings_of

        settings = settings_of(Study.model_validate(json.loads(sys.argv[1])))
        print(Seeds().projection, settings.projection_seed, settings.corpus_block)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code, json.dumps(BASE)], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["99", "99", "1234"]
