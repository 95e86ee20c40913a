"""The whole multi-process deployment on one machine, from the project's own files: ``phase2
stack up`` starts it, ``phase2 stack down`` stops it.

Each process stands for a machine of a real deployment (deploy/stack/README.md maps them): the
database, the broker and the object store; the "launching machine" (code server, daemon,
webserver: each run's process starts there); the GPU box (a Celery worker on the ``embedding``
queue) and the CPU boxes (workers on Dagster's default queue). Every process gets the same
environment (``stack.env``), but its own working folder and data folder: a worker sees only its
own scratch space and download cache, never the launching machine's ``data/``.

Layout of the stack folder::

    instance/      DAGSTER_HOME: deploy/stack/dagster.yaml (Postgres, queue, run monitoring)
    postgres/ redis/ s3/            the servers' data and logs
    launcher/      code server, daemon, webserver (their logs; launcher/data must stay empty)
    workers/<name>/                 one folder per worker: its log, data/.cache, data/.staging
    stack.env      the shared environment, as KEY=value lines
    stack.json     ports, URLs and process ids (read by ``phase2 stack down``)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from phase2_assets.defs.execution import pools
from phase2_assets.stack import servers
from phase2_assets.stack.servers import Server, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "stack"
PG_USER = "dagster"
PG_DB = "dagster"
BUCKET = "phase2-stack"
S3_CREDENTIALS = {  # moto accepts any; a real store's come from the caller's environment
    "AWS_ACCESS_KEY_ID": "stack",
    "AWS_SECRET_ACCESS_KEY": "stack",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# One worker on the embedding queue (the GPU box), two on the default queue (CPU boxes).
DEFAULT_WORKERS = (("gpu", pools.EMBEDDING), ("cpu1", "dagster"), ("cpu2", "dagster"))
POOL_LIMITS = {pools.EMBEDDING: 1, pools.MEMORY_HEAVY: 1}
# Variables of the caller that every process of the stack needs as well.
PASSED_ON = (
    "PHASE2_BEIR_DIR",
    "PHASE2_MODEL_DIR",
    "PHASE2_ALLOW_DOWNLOAD",
    "PHASE2_DEVICE",
    "PHASE2_TRUST_REMOTE_CODE",
    "PHASE2_SENSOR_INTERVAL_SECONDS",
    "PHASE2_CELERY_VISIBILITY_TIMEOUT",
    "PHASE2_STATIC_IMAGES",
    # An object store of the caller's own (--storage-url): its endpoint and credentials.
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
)


@dataclass
class Stack:
    folder: Path
    env: dict[str, str]
    ports: dict[str, int]
    servers: dict[str, Server] = field(default_factory=dict)

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webserver']}"

    @property
    def storage_url(self) -> str:
        return self.env["PHASE2_STORAGE_URL"]

    def worker_folder(self, name: str) -> Path:
        return self.folder / "workers" / name

    @property
    def launcher_folder(self) -> Path:
        return self.folder / "launcher"

    def dagster(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A ``dagster`` CLI command against this stack's instance and workspace."""
        return subprocess.run(
            [servers.tool("dagster"), *args],
            env={**os.environ, **self.env},
            cwd=self.launcher_folder,
            capture_output=True,
            text=True,
            check=check,
        )

    @property
    def workspace(self) -> Path:
        return self.folder / "workspace.yaml"

    def add_study(self, name: str, location_file: str | os.PathLike) -> None:
        """Serve another study beside the first: its own code server (a location file naming
        the study and its own store, ``components.study.study_location``), added to the
        workspace; the daemon and the webserver are restarted to load it. The workers run
        every location's steps: each task names the location's code it needs."""
        port = free_port()
        self.ports[f"code_server_{name}"] = port
        env = {**self.env, "PHASE2_DATA_DIR": str(self.launcher_folder / "data")}
        self.servers[f"code_server_{name}"] = servers.code_server(
            self.launcher_folder, port, env, str(Path(location_file).resolve()), name
        ).start(timeout_s=180)
        workspace = yaml.safe_load(self.workspace.read_text())
        entry = {"host": "127.0.0.1", "port": port, "location_name": name}
        workspace["load_from"].append({"grpc_server": entry})
        self.workspace.write_text(yaml.safe_dump(workspace, sort_keys=False))
        for server in ("daemon", "webserver"):
            if server in self.servers:
                self.restart(server, signal.SIGTERM)

    def restart(self, name: str, sig: int = signal.SIGINT) -> None:
        """Stop one server (SIGINT: PostgreSQL's fast shutdown) and start it again."""
        server = self.servers[name]
        server.stop(sig)
        server.start()
        self._record()

    def down(self) -> None:
        for server in reversed(list(self.servers.values())):
            server.stop()
        (self.folder / "stack.json").unlink(missing_ok=True)

    def _record(self) -> None:
        state = {
            "ports": self.ports,
            "webserver": self.webserver_url,
            "storage_url": self.storage_url,
            "pids": {name: s.pid for name, s in self.servers.items() if s.alive()},
        }
        (self.folder / "stack.json").write_text(json.dumps(state, indent=2) + "\n")


def _password(folder: Path) -> str:
    """The database password: made once with the database and kept beside it (mode 600), so
    a stack started again in the same folder logs in to the database it made before."""
    path = folder / "postgres" / "password"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(secrets.token_hex(12) + "\n")
    return path.read_text().strip()


def _absolute(value: str) -> str:
    """A path given relative to the caller's folder, made absolute: every process of the stack
    runs in a folder of its own. A bundled study name (``demo``) stays as it is."""
    return str(Path(value).resolve()) if Path(value).exists() else value


def _shared_env(folder: Path, ports: Mapping[str, int], study: str, storage_url: str | None):
    password = _password(folder)
    env = {
        "DAGSTER_HOME": str(folder / "instance"),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(ports["postgres"]),
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": password,
        "DAGSTER_PG_DB": PG_DB,
        "PHASE2_CODE_SERVER_HOST": "127.0.0.1",
        "PHASE2_CODE_SERVER_PORT": str(ports["code_server"]),
        "PHASE2_EXECUTOR": "celery",
        "PHASE2_CELERY_BROKER": f"redis://127.0.0.1:{ports['redis']}/0",
        "PHASE2_STUDY": _absolute(study),
        "PHASE2_STORAGE_URL": storage_url or f"s3://{BUCKET}/studies",
    }
    env |= {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    for key in ("PHASE2_BEIR_DIR", "PHASE2_MODEL_DIR"):
        if key in env:
            env[key] = _absolute(env[key])
    if storage_url is None:  # the stack's own S3 endpoint
        env |= {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}", **S3_CREDENTIALS}
    return env


def make_bucket(env: Mapping[str, str], name: str) -> bool:
    """Create bucket ``name`` on the endpoint of ``env`` unless it exists; whether it does."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        skip_instance_cache=True,
    )
    if not fs.exists(name):
        fs.mkdir(name)
    return fs.exists(name)


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))


def up(
    folder: str | os.PathLike,
    study: str,
    *,
    storage_url: str | None = None,
    workers: tuple[tuple[str, str], ...] = DEFAULT_WORKERS,
    location: str = "phase2_assets.definitions",
    webserver: bool = True,
) -> Stack:
    """Start every server of the stack in ``folder`` (created; an earlier stack's database is
    reused) and return it once every one answers. On failure, what was started is stopped."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    names = ("postgres", "redis", "s3", "code_server", "webserver")
    ports = {name: free_port() for name in names}
    env = _shared_env(folder, ports, study, storage_url)
    stack = Stack(folder, env, ports)
    instance = folder / "instance"
    instance.mkdir(exist_ok=True)
    shutil.copyfile(DEPLOY / "dagster.yaml", instance / "dagster.yaml")
    workspace = stack.workspace
    shutil.copyfile(DEPLOY / "workspace.yaml", workspace)
    write_env_file(folder / "stack.env", env)
    launcher = folder / "launcher"
    launcher_env = {**env, "PHASE2_DATA_DIR": str(launcher / "data")}
    cores = len(os.sched_getaffinity(0))
    worker_env = {**env, "PHASE2_THREADS": str(max(1, cores // max(1, len(workers))))}
    try:
        servers.init_postgres(folder / "postgres", PG_USER, env["DAGSTER_PG_PASSWORD"])
        stack.servers["postgres"] = servers.postgres(folder / "postgres", ports["postgres"])
        stack.servers["postgres"].start()
        servers.create_database(ports["postgres"], PG_USER, env["DAGSTER_PG_PASSWORD"], PG_DB)
        stack.servers["redis"] = servers.redis(folder / "redis", ports["redis"]).start()
        if storage_url is None:
            stack.servers["s3"] = servers.s3_endpoint(folder / "s3", ports["s3"]).start()
            make_bucket(env, BUCKET)
        stack.servers["code_server"] = servers.code_server(
            launcher, ports["code_server"], launcher_env, location
        ).start(timeout_s=180)
        _set_pool_limits(stack)
        stack.servers["daemon"] = servers.daemon(launcher, launcher_env, workspace).start(120)
        if webserver:
            stack.servers["webserver"] = servers.webserver(
                launcher, ports["webserver"], launcher_env, workspace
            ).start(timeout_s=180)
        for name, queue in workers:
            stack.servers[f"worker_{name}"] = servers.celery_worker(
                name, queue, stack.worker_folder(name), worker_env
            ).start(timeout_s=180)
    except BaseException:
        stack.down()
        raise
    stack._record()
    return stack


def start_study(stack: Stack) -> None:
    """Switch on every sensor of the location (each tier's, and the dead-run sweep): from here
    the daemon runs the whole study to its report, level by level, as ``phase2 run`` would."""
    stack.dagster("sensor", "start", "--start-all", "-w", str(stack.folder / "workspace.yaml"))


def _set_pool_limits(stack: Stack) -> None:
    for pool, limit in POOL_LIMITS.items():
        stack.dagster("instance", "concurrency", "set", pool, str(limit))


def down(folder: str | os.PathLike, timeout_s: float = 30.0) -> list[str]:
    """Stop the stack recorded in ``folder/stack.json`` (from any process); the names stopped."""
    state_file = Path(folder) / "stack.json"
    if not state_file.exists():
        return []
    pids: dict[str, int] = json.loads(state_file.read_text())["pids"]
    stopped = []
    for name, pid in reversed(list(pids.items())):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout_s
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _exists(pid):
            os.killpg(pid, signal.SIGKILL)
        stopped.append(name)
    state_file.unlink()
    return stopped


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of this process counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
