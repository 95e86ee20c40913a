"""Loading the code location imports none of the heavy compute libraries.

Every run process, every Celery task's first step, every `dagster` command and each reload of
the UI loads the definitions; torch, scikit-learn and scipy.stats cost about 5 s of that load
(8.3 s → 3.2 s on 2 cores here when they moved into the functions that use them). They load in
the steps that compute with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from phase2_assets.testing.dagster_dev import ROOT

PROBE = """
import json, sys
from phase2_assets.definitions import defs
defs().get_repository_def().get_all_jobs()
heavy = set(json.loads(sys.argv[1]))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m == "scipy.stats")))
"""
HEAVY = {"torch", "sklearn", "sentence_transformers", "transformers"}


def test_loading_the_definitions_imports_no_heavy_library():
    env = {**os.environ, "PHASE2_STUDY": "demo"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(sorted(HEAVY))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"loading the code location imported {loaded[:10]}"
