"""``phase2 stack up`` and ``phase2 stack down`` as a user types them: the stack comes up with
its own S3 endpoint, answers on the address it prints, and every process it started is gone
after ``down``, from another process (only ``stack.json`` links the two)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from phase2_assets.testing.stack import require_stack

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_stack_up_then_down_from_the_command_line(tmp_path, stack_study):
    require_stack()
    phase2 = str(Path(sys.executable).with_name("phase2"))
    folder = tmp_path / "stack"
    up = subprocess.run(
        [phase2, "stack", "up", "--dir", str(folder), "--study", str(stack_study)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    state = (
        json.loads((folder / "stack.json").read_text()) if (folder / "stack.json").exists() else {}
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"UI: {state['webserver']}" in up.stdout
        assert "files in s3://phase2-stack/studies" in up.stdout
        with urllib.request.urlopen(f"{state['webserver']}/server_info", timeout=10) as answer:
            assert answer.status == 200
        assert set(state["pids"]) == {
            "postgres",
            "redis",
            "s3",
            "code_server",
            "daemon",
            "webserver",
            "worker_gpu",
            "worker_cpu1",
            "worker_cpu2",
        }
        assert "PHASE2_EXECUTOR=celery" in (folder / "stack.env").read_text()
    finally:
        down = subprocess.run(
            [phase2, "stack", "down", "--dir", str(folder)], capture_output=True, text=True
        )
    assert down.returncode == 0 and down.stdout.startswith("stopped: "), down.stdout
    assert not [name for name, pid in state["pids"].items() if _alive(pid)]
    assert not (folder / "stack.json").exists()
