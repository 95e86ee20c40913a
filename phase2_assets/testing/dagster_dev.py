"""`dagster dev` on a free loopback port against a temporary instance, for the UI and CLI tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from phase2_assets.cli.instance import write_local_config
from phase2_assets.stack.servers import free_port
from phase2_assets.testing.tiny import write_tiny_study

ROOT = Path(__file__).resolve().parents[2]  # the repository: workspace.yaml
LOCATION = "phase2_assets"  # workspace.yaml


class Webserver:
    def __init__(self, url: str):
        self.url = url

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            payload = json.load(resp)
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def launch(self, job: str, partition: str, tags: dict[str, str] | None = None) -> str:
        data = self.graphql(
            """
            mutation Launch($params: ExecutionParams!) {
              launchRun(executionParams: $params) {
                __typename
                ... on LaunchRunSuccess { run { runId } }
                ... on PythonError { message }
                ... on RunConfigValidationInvalid { errors { message } }
              }
            }""",
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": "__repository__",
                        "jobName": job,
                    },
                    "executionMetadata": {
                        "tags": [
                            {"key": k, "value": v}
                            for k, v in {**(tags or {}), "dagster/partition": partition}.items()
                        ]
                    },
                }
            },
        )["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return data["run"]["runId"]

    def location_loaded(self) -> bool:
        try:
            entries = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name "
                "locationOrLoadError { __typename } } } } }"
            )["workspaceOrError"]["locationEntries"]
        except OSError:
            return False
        return [e["locationOrLoadError"]["__typename"] for e in entries] == ["RepositoryLocation"]

    def runs(self) -> list[dict]:
        """Every run of the instance: id, job, status and partition."""
        data = self.graphql(
            "{ runsOrError { ... on Runs { results { runId jobName status "
            "tags { key value } } } } }"
        )["runsOrError"]["results"]
        return [
            {
                "id": r["runId"],
                "job": r["jobName"],
                "status": r["status"],
                "partition": next(
                    (t["value"] for t in r["tags"] if t["key"] == "dagster/partition"), None
                ),
            }
            for r in data
        ]

    def wait_for_all_runs(self, timeout: float = 600) -> list[dict]:
        """Until no run is queued, starting or running; then every run."""
        deadline = time.monotonic() + timeout
        busy = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "MANAGED", "CANCELING"}
        while True:
            runs = self.runs()
            if runs and not any(r["status"] in busy for r in runs):
                return runs
            assert time.monotonic() < deadline, f"runs still busy after {timeout} s: {runs}"
            time.sleep(1)

    def wait_for_sensor_tick(self, name: str, timeout: float = 180) -> dict:
        """The first finished tick of a running sensor (the daemon evaluates sensors every
        ~30 s; a tick in progress reads STARTED)."""
        query = """
            query S($selector: SensorSelector!) {
              sensorOrError(sensorSelector: $selector) {
                ... on Sensor { sensorState { status ticks(limit: 1) { status skipReason } } }
              }
            }"""
        selector = {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "sensorName": name,
        }
        deadline = time.monotonic() + timeout
        while True:
            state = self.graphql(query, {"selector": selector})["sensorOrError"]["sensorState"]
            assert state["status"] == "RUNNING", state
            if state["ticks"] and state["ticks"][0]["status"] != "STARTED":
                return state["ticks"][0]
            assert time.monotonic() < deadline, f"sensor {name} did not tick in {timeout} s"
            time.sleep(2)

    def wait(self, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.graphql(
                "query R($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                {"id": run_id},
            )["runOrError"]["status"]
            if status in {"SUCCESS", "FAILURE", "CANCELED"}:
                return status
            time.sleep(1)
        raise AssertionError(f"run {run_id} still {status} after {timeout} s")


def demo_named_study(path: Path, beir: Path, model: Path) -> Path:
    """The tiny BEIR folder and BERT under the demo's names (dataset ``scifact``, model
    ``minilm``, tier ``demo``): the demo's partition keys, runs of seconds."""
    return write_tiny_study(
        path,
        beir,
        model,
        name="demo",
        datasets={"scifact": {"path": str(beir), "split": "test"}},
        models={"minilm": {"name": "tests/tiny-bert", "path": str(model), "dim": 32}},
        tiers={
            "demo": {
                "datasets": ["scifact"],
                "models": ["minilm"],
                "bits": [64, 256],
                "pq_bytes": [8, 32],
            }
        },
        bfi={"recall_bits": [64, 256]},
    )


def dagster_env(tmp_path: Path, study: Path) -> dict[str, str]:
    """The environment a researcher sets: instance folder, study, data folder."""
    home = tmp_path / "dagster_home"
    write_local_config(home)
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PHASE2_STUDY": str(study),
        "PHASE2_DATA_DIR": str(tmp_path / "data"),
        "PHASE2_EXECUTOR": "in_process",
    }


@contextlib.contextmanager
def dagster_dev(tmp_path: Path, env: dict[str, str]) -> Iterator[Webserver]:
    """Webserver and daemon (which dequeues launched runs) until the block ends."""
    port = free_port()
    log_path = tmp_path / "dagster_dev.log"
    with open(log_path, "w") as log:
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml")]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Webserver(f"http://127.0.0.1:{port}")
        try:
            deadline = time.monotonic() + 180
            while not server.location_loaded():
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "dagster dev did not serve the code location"
                time.sleep(1)
            yield server
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
