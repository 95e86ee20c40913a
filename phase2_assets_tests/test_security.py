"""Security guarantees, checked on the source and on the running graph.

The scan reads every module of the product (``phase2_assets``, ``bench``) as a syntax tree and
refuses: pickle-family modules, ``allow_pickle=True`` or an ``np.load`` that does not say
``allow_pickle=False``, ``torch.load`` without ``weights_only=True``, a literal
``trust_remote_code=True``, ``shell=True``, ``os.system`` / ``os.popen`` / ``eval`` / ``exec``,
and a subprocess whose command is a string rather than an argument list. A planted bad module
proves the scan can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from phase2_assets.compute.data import encoders
from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions
from phase2_assets.testing import graph as gh
from phase2_assets.testing.tiny import write_tiny_study

ROOT = Path(__file__).resolve().parents[1]
PICKLE_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "joblib",
    "shelve",
    "marshal",
    "cloudpickle",
}
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def violations(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                if (name or "").split(".")[0] in PICKLE_MODULES:
                    found.append(f"{where}: imports {name}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if _is_true(_kw(node, "allow_pickle")):
            found.append(f"{where}: allow_pickle=True")
        if name in {"np.load", "numpy.load"} and _kw(node, "allow_pickle") is None:
            found.append(f"{where}: np.load without allow_pickle=False")
        if name == "torch.load" and not _is_true(_kw(node, "weights_only")):
            found.append(f"{where}: torch.load without weights_only=True")
        if _is_true(_kw(node, "trust_remote_code")):
            found.append(f"{where}: trust_remote_code=True")
        if _is_true(_kw(node, "shell")):
            found.append(f"{where}: shell=True")
        if name in {"os.system", "os.popen", "eval", "exec"}:
            found.append(f"{where}: {name}()")
        if name.split(".")[-1] in SUBPROCESS_CALLS and name.startswith("subprocess") and node.args:
            if not isinstance(node.args[0], ast.List | ast.Tuple | ast.Name):
                found.append(f"{where}: subprocess command built as a string")
    return found


def _product_modules() -> list[Path]:
    return sorted([*(ROOT / "phase2_assets").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


def test_the_product_source_has_no_pickle_remote_code_or_shell_calls():
    modules = _product_modules()
    assert len(modules) > 40  # the scan really reads the package
    found = [v for m in modules for v in violations(m.read_text(), str(m.relative_to(ROOT)))]
    assert found == []


def test_the_scan_catches_each_forbidden_pattern():
    planted = """
import pickle
from joblib import dump
import numpy as np, os, subprocess, torch
np.load("x.npy")
np.load("x.npy", allow_pickle=True)
torch.load("w.pt")
Model("m", trust_remote_code=True)
subprocess.run(f"ls {name}", shell=True)
subprocess.check_output("ls " + name)
os.system("rm -rf " + name)
eval(config_string)
"""
    found = violations(planted, "planted.py")
    for expected in [
        "imports pickle",
        "imports joblib",
        "np.load without allow_pickle=False",
        "allow_pickle=True",
        "torch.load without weights_only",
        "trust_remote_code=True",
        "shell=True",
        "subprocess command built as a string",
        "os.system()",
        "eval()",
    ]:
        assert any(expected in v for v in found), expected
    assert violations('subprocess.run(["ls", name])\nnp.load(p, allow_pickle=False)', "ok.py") == []


def test_no_asset_uses_dagsters_pickling_io_manager(tmp_path):
    defs = build_definitions(load_study("study"), str(tmp_path))
    keys = {
        out.io_manager_key
        for asset in defs.assets
        for out in asset.node_def.output_defs
        if out.name in asset.keys_by_output_name  # check outputs carry no value
    }
    assert "io_manager" not in keys and len(keys) >= 6  # every output goes to a study format


def test_remote_code_needs_the_config_and_the_users_confirmation():
    assert encoders.remote_code_allowed("m", asked=False, confirmed=["m"]) is False
    assert encoders.remote_code_allowed("m", asked=True, confirmed=["other", "m"]) is True
    with pytest.raises(encoders.RemoteCodeNotConfirmed, match="PHASE2_TRUST_REMOTE_CODE=m"):
        encoders.remote_code_allowed("m", asked=True, confirmed=["other"])


def test_a_config_asking_for_remote_code_does_not_run_it_unconfirmed(
    tmp_path, tiny_beir, tiny_model, monkeypatch
):
    models = {
        "tiny-bert": {
            "name": "tests/tiny-bert",
            "path": str(tiny_model),
            "dim": 32,
            "trust_remote_code": True,
        }
    }
    path = write_tiny_study(tmp_path / "s.yaml", tiny_beir, tiny_model, models=models)
    monkeypatch.delenv("PHASE2_TRUST_REMOTE_CODE", raising=False)
    _, defs = gh.build(path, tmp_path / "data")
    assert gh.materialize(defs, "dataset", "tiny").success
    refused = gh.materialize(defs, "pair", "tiny__tiny-bert")
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    assert "PHASE2_TRUST_REMOTE_CODE=tiny-bert" in str(failure.step_failure_data.error)
    assert not (tmp_path / "data" / "corpus_embeddings").exists()

    monkeypatch.setenv("PHASE2_TRUST_REMOTE_CODE", "tiny-bert")
    _, confirmed = gh.build(path, tmp_path / "data")
    assert gh.materialize(confirmed, "pair", "tiny__tiny-bert").success
