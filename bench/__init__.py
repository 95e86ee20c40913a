"""Benchmarks of the study's speed and memory targets (issue 5), run on demand, never in CI.

``python -m bench`` (full: 1M x 768 synthetic vectors) or ``python -m bench --quick``. Every
target prints one line ``TARGET <name> <measured> <goal> PASS|FAIL``, a ratio against a baseline
measured in the same invocation, on the same machine and the same data. Heavy phases run in child
processes so that each one's peak RSS is its own.
"""

import json
import subprocess
import sys
from pathlib import Path


def child(module: str, *args: str, env: dict | None = None) -> dict:
    """Run ``python -m <module> *args`` in a fresh interpreter (its peak RSS its own; ``env``
    its environment if given); its last ``BENCH_JSON`` line is the result."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")][-1]
    return json.loads(line.removeprefix("BENCH_JSON "))
