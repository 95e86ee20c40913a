"""The stack's servers, each a real program in its own process group on 127.0.0.1: PostgreSQL,
Redis, an S3 endpoint (moto's server), the code server, the daemon, the webserver and Celery
workers. A server's output goes to its own log file (never to a pipe nobody reads: a full pipe
blocks the server), and each one is ready only when it answers, not when it has been started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class ServerError(RuntimeError):
    """A server did not start or stop; the message names it and ends with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str) -> str:
    """A program on PATH, in this Python's bin folder, or Debian's PostgreSQL bin folder."""
    for folder in (Path(sys.executable).parent, *POSTGRES_BINS):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name} is not installed (see deploy/stack/README.md: apt-get install)")
    return found


@dataclass
class Server:
    """One process of the stack: its command, environment, working directory and log."""

    name: str
    command: list[str]
    log: Path
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[Server], bool] = lambda _: True
    user: str | None = None  # run as this user (PostgreSQL refuses to run as root)
    proc: subprocess.Popen | None = None
    log_from: int = 0  # where this start's lines begin in the log (a restart appends)

    def start(self, timeout_s: float = 60.0) -> Server:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        command = self.command
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped (or killed) whole
            )
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"{self.name} did not answer in {timeout_s:.0f} s: {self.tail()}")
            time.sleep(0.2)
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.ready(self))
        except OSError:
            return False

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a machine that loses power."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.pid, sig)
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def since_start(self) -> str:
        with open(self.log, "rb") as fh:
            fh.seek(self.log_from)
            return fh.read().decode(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
        return response.status < 500


def _tcp_says(port: int, send: bytes, expect: bytes) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(send)
        return s.recv(64).startswith(expect)


def _log_says(text: str) -> Callable[[Server], bool]:
    return lambda server: text in server.since_start()


def _pg_user() -> str | None:
    """Who runs PostgreSQL: this user, or ``postgres`` when this is root (initdb refuses root)."""
    return "postgres" if os.geteuid() == 0 else None


def _hand_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    for path in paths:
        shutil.chown(path, user, user)
        for parent in path.parents:  # the server user must reach its folder
            if parent == parent.parent:
                break
            if not os.stat(parent).st_mode & 0o001:
                os.chmod(parent, os.stat(parent).st_mode | 0o001)


def init_postgres(folder: Path, user: str, password: str) -> Path:
    """A new database cluster in ``folder/pgdata`` (once), owned by the server's user, with a
    password login for ``user``."""
    pgdata = folder / "pgdata"
    if (pgdata / "PG_VERSION").exists():
        return pgdata
    run_as = _pg_user()
    folder.mkdir(parents=True, exist_ok=True)
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    pgdata.mkdir(mode=0o700, exist_ok=True)
    _hand_to(run_as, pgdata, pwfile)
    command = [tool("initdb"), "-D", str(pgdata), "-U", user, f"--pwfile={pwfile}"]
    command += ["--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions"]
    if run_as:
        command = ["runuser", "-u", run_as, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True)
    pwfile.unlink()
    if done.returncode != 0:
        raise ServerError(f"initdb {pgdata}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return pgdata


def postgres(folder: Path, port: int) -> Server:
    pgdata = folder / "pgdata"
    log = folder / "postgres.log"
    log.touch()
    _hand_to(_pg_user(), log)
    command = [tool("postgres"), "-D", str(pgdata), "-p", str(port), "-h", "127.0.0.1"]
    command += ["-c", "unix_socket_directories=", "-c", "max_connections=200"]
    return Server(
        "postgres",
        command,
        log,
        folder,
        ready=lambda _: (
            _tcp_accepts(port)
            and _succeeds([tool("pg_isready"), "-h", "127.0.0.1", "-p", str(port)])
        ),
        user=_pg_user(),
    )


def _succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


def _tcp_accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


def create_database(port: int, user: str, password: str, name: str) -> None:
    """The instance's database (kept when the stack's folder already has it)."""
    done = subprocess.run(
        [tool("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, name],
        env={**os.environ, "PGPASSWORD": password},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 and "already exists" not in done.stderr:
        raise ServerError(f"createdb {name} on port {port}: {done.stderr.strip()}")


def redis(folder: Path, port: int) -> Server:
    command = [tool("redis-server"), "--bind", "127.0.0.1", "--port", str(port)]
    command += ["--save", "", "--appendonly", "no", "--dir", str(folder), "--protected-mode", "no"]
    return Server(
        "redis",
        command,
        folder / "redis.log",
        folder,
        ready=lambda _: _tcp_says(port, b"PING\r\n", b"+PONG"),
    )


def s3_endpoint(folder: Path, port: int) -> Server:
    """moto's server mode: a real S3 HTTP API, as s3fs's own test suite runs it."""
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return Server(
        "s3",
        command,
        folder / "s3.log",
        folder,
        ready=lambda _: _http_ok(f"http://127.0.0.1:{port}/moto-api/"),
    )


def code_server(
    folder: Path,
    port: int,
    env: Mapping[str, str],
    location: str,
    name: str = "phase2_assets",
) -> Server:
    """``dagster api grpc``: the study's code location, which also starts each run's process."""
    command = [tool("dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(port)]
    command += [*location_target(location), "--location-name", name]
    return Server(
        f"code-server {name}",
        command,
        folder / f"code-server-{name}.log",
        folder,
        env,
        ready=lambda _: _succeeds(
            [tool("dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)]
        ),
    )


def location_target(location: str) -> list[str]:
    """``-m module`` for the package's own location, ``-f file`` for a study's location file."""
    return ["-f", location] if location.endswith(".py") else ["-m", location]


def daemon(folder: Path, env: Mapping[str, str], workspace: Path) -> Server:
    command = [tool("dagster-daemon"), "run", "-w", str(workspace)]
    return Server(
        "daemon",
        command,
        folder / "daemon.log",
        folder,
        env,
        ready=_log_says("Instance is configured with the following daemons"),
    )


def webserver(folder: Path, port: int, env: Mapping[str, str], workspace: Path) -> Server:
    command = [tool("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
    command += ["-w", str(workspace)]
    return Server(
        "webserver",
        command,
        folder / "webserver.log",
        folder,
        env,
        ready=lambda _: _http_ok(f"http://127.0.0.1:{port}/server_info"),
    )


def celery_worker(name: str, queue: str, folder: Path, env: Mapping[str, str]) -> Server:
    """A Celery worker consuming one queue, one step at a time, in its own folder (its data
    folder, scratch and download cache are its own: it sees nothing of the launching machine's)."""
    command = [tool("celery"), "-A", "phase2_assets.defs.execution.celery_workers", "worker"]
    command += ["-Q", queue, "-c", "1", "-n", f"{name}@%h", "--loglevel", "INFO"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return Server(
        f"worker {name}",
        command,
        folder / "worker.log",
        folder,
        {**env, "PHASE2_DATA_DIR": str(folder / "data")},
        ready=_log_says(" ready."),
    )
