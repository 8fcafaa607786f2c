"""Redis and PostgreSQL for distributed mode on this machine, started on free loopback
ports with private data directories and stopped afterwards (tests, the benchmark, trying
the distributed mode out). Production sites point `--broker` and `--database` at theirs.

PostgreSQL refuses to run as root, so as root it runs as the `postgres` user the Debian
package creates (or `nobody`), through `setpriv`, which execs it directly: the process we
hold is the server itself.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from runbook_lib.lab.stack import free_port


class BackingError(RuntimeError):
    """A backing service could not be started; the message says what to install or read."""


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise BackingError(f"PostgreSQL's {name} is not installed: run `make setup` (postgresql)")
    return found[-1]


def _wait(ready, what: str, log: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackingError(f"{what} exited {proc.returncode}: {log.read_text()[-1500:]}")
        if ready():
            return
        time.sleep(0.1)
    raise BackingError(f"{what} did not answer within {timeout:.0f}s; see {log}")


@dataclass
class Redis:
    """redis-server without persistence: a restart loses its queue (the index does not)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    db: int = 0  # the logical database (0-15): tests sharing one server use one each

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    def share(self, db: int) -> Redis:
        """This running server seen through database `db`; its `stop` leaves the server."""
        return replace(self, db=db, proc=None)

    def start(self) -> Redis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise BackingError("redis-server is not installed: run `make setup` (redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no", "--logfile", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait(self._answers, "redis-server", log, self.proc)
        return self

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Postgres:
    """A private PostgreSQL cluster with a database `runbook` owned by user `runbook`. As
    root its files live in a directory of their own under /tmp that the server's user can
    reach (a test's tmp_path is private to root); `stop(remove=True)` deletes them."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    home: Path | None = None
    database: str = "runbook"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://runbook@127.0.0.1:{self.port}/{self.database}"

    def share(self, database: str) -> Postgres:
        """This running server with a new, empty `database` (tests sharing one server use one
        each); its `stop` leaves the server and its files."""
        with self._connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        return replace(self, database=database, proc=None, home=None)

    def _as_owner(self) -> list[str]:
        """The command prefix that runs PostgreSQL's programs as a user they accept."""
        if os.geteuid() != 0:
            self.home = self.workdir
            return []
        for user in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                continue
            if self.home is None:
                self.home = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
                os.chmod(self.home, 0o755)
            for d in (self.home, self.home / "data", self.home / "sock"):
                d.mkdir(parents=True, exist_ok=True)
                os.chown(d, pw.pw_uid, pw.pw_gid)
            return [shutil.which("setpriv") or "setpriv", f"--reuid={pw.pw_uid}",
                    f"--regid={pw.pw_gid}", "--clear-groups"]  # fmt: skip
        raise BackingError("running as root and no `postgres` or `nobody` user to run PostgreSQL")

    def start(self) -> Postgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        owner = self._as_owner()
        assert self.home is not None
        data, sock, log = self.home / "data", self.home / "sock", self.workdir / "pg.log"
        sock.mkdir(parents=True, exist_ok=True)
        if not (data / "PG_VERSION").exists():
            done = subprocess.run(
                [*owner, _pg_bin("initdb"), "-D", str(data), "-U", "runbook", "--auth=trust",
                 "-E", "UTF8", "--no-sync"],
                capture_output=True, text=True, cwd=self.home,
            )  # fmt: skip
            if done.returncode != 0:
                raise BackingError(f"initdb failed: {done.stderr[-1500:]}")
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*owner, _pg_bin("postgres"), "-D", str(data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sock}"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.home,
            )  # fmt: skip
        _wait(self._answers, "postgres", log, self.proc)
        self._create_database()
        return self

    def _connect(self, db: str):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="runbook", dbname=db, connect_timeout=2,
            autocommit=True,
        )  # fmt: skip

    def _answers(self) -> bool:
        import psycopg

        try:
            self._connect("postgres").close()
            return True
        except psycopg.OperationalError:
            return False

    def _create_database(self) -> None:
        with self._connect("postgres") as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (self.database,)).fetchone():  # fmt: skip
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, remove: bool = True) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if remove and self.home and self.home != self.workdir:
            shutil.rmtree(self.home, ignore_errors=True)


@dataclass
class Node:
    """One `runbook serve` or `runbook worker` process standing for a machine."""

    name: str
    proc: subprocess.Popen
    log: Path
    url: str = ""  # a receiver's

    def kill9(self) -> None:
        """The machine dies: the process and everything it started, at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill9()


@dataclass
class LocalCluster:
    """Distributed mode on one machine: Redis, PostgreSQL, receivers and workers as
    processes with their own ports and directories, sharing one records directory."""

    workdir: Path
    token: str = "cluster-token"
    run_args: list[str] = field(default_factory=list)  # e.g. --prometheus-url, --run-timeout
    redis: Redis | None = None
    postgres: Postgres | None = None
    nodes: list[Node] = field(default_factory=list)

    @property
    def records(self) -> Path:
        return self.workdir / "records"

    def start(self) -> LocalCluster:
        """Start Redis and PostgreSQL, unless given ones already running (`share`d views)."""
        self.redis = self.redis or Redis(self.workdir / "redis").start()
        self.postgres = self.postgres or Postgres(self.workdir / "postgres").start()
        return self

    def _spawn(self, name: str, argv: list[str], cpus: set[int] | None = None) -> Node:
        import sys

        log = self.workdir / f"{name}.log"
        env = {**os.environ, "RUNBOOK_WEBHOOK_TOKEN": self.token}
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runbook_lib.cli", *argv,
                 "--database", self.postgres.url, "--broker", self.redis.url,
                 "--output", str(self.records), *self.run_args],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )  # fmt: skip
        node = Node(name, proc, log)
        self.nodes.append(node)
        return node

    def receiver(self, name: str, *extra: str) -> Node:
        import httpx

        port = free_port()
        node = self._spawn(name, ["serve", "--port", str(port), *extra])
        node.url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{node.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(up, f"receiver {name}", node.log, node.proc, timeout=60)
        return node

    def worker(
        self, name: str, concurrency: int = 1, *extra: str, cpus: set[int] | None = None
    ) -> Node:
        """A worker; on the CPUs `cpus` only (with its kernels), when it stands for a machine
        whose cores are its own."""
        return self._spawn(name, ["worker", "--workers", str(concurrency), "--name", name,
                                  *extra], cpus)  # fmt: skip

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        for service in (self.redis, self.postgres):
            if service:
                service.stop()
