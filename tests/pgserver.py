"""A real PostgreSQL server on 127.0.0.1 for the tests: Debian's binaries, ``initdb`` + ``pg_ctl``.

:class:`PostgresServer` makes a cluster in a fresh temporary directory and
starts it on a free port of 127.0.0.1 (no Unix socket, ``trust`` auth for
loopback only, fsync off: the tests crash clients, never the server). As root,
``initdb`` and the server run as ``nobody`` (PostgreSQL refuses to run as
root). ``STEADYPOST_TEST_POSTGRES=postgresql://...`` uses an existing server
instead (a user that may create databases). Each test gets its own database:
:meth:`PostgresServer.new_database`.

Run as a script it starts a server and prints its URL until Ctrl-C
(``python tests/pgserver.py``), for trying the fleet by hand.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

EXTERNAL_ENV = "STEADYPOST_TEST_POSTGRES"
NOBODY = 65534


class PostgresServerError(RuntimeError):
    pass


def find_bindir() -> Path:
    """The directory of ``initdb`` and ``pg_ctl`` (``$PG_BINDIR``, ``pg_config``, Debian's)."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True,
                                             text=True, check=True).stdout.strip())  # fmt: skip
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresServerError(
        "PostgreSQL's initdb was not found: install the server (apt-get install -y postgresql), "
        f"set PG_BINDIR, or point {EXTERNAL_ENV} at a server"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster for a test session (see the module docstring)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        """fsync as a real server does (for benchmarks); the tests leave it off."""
        self.external = os.environ.get(EXTERNAL_ENV) or None
        self.port = 0
        self.base: Path | None = None
        self.bindir: Path | None = None
        self.url = self.external or ""

    def _as_owner(self) -> dict[str, object]:
        return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}

    def _run(self, *args: str) -> None:
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120,
                              **self._as_owner())  # type: ignore[call-overload]  # fmt: skip
        if proc.returncode != 0:
            raise PostgresServerError(f"{' '.join(args)} failed: {proc.stderr or proc.stdout}")

    def start(self) -> PostgresServer:
        if self.external:
            return self
        self.bindir = find_bindir()
        self.base = Path(tempfile.mkdtemp(prefix="steadypost-pg-"))
        self.base.chmod(0o755)
        data = self.base / "data"
        data.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(data, NOBODY, NOBODY)
            os.chown(self.base, NOBODY, NOBODY)
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "steadypost",
                  "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        self.port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                   "-c max_connections=300 -c shared_buffers=64MB")  # fmt: skip
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.base / "log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip
        self.url = f"postgresql://steadypost@127.0.0.1:{self.port}/postgres"
        return self

    def postmaster_pid(self) -> int | None:
        """The server's main process (``None`` for an external server)."""
        if self.base is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int((self.base / "data" / "postmaster.pid").read_text().split()[0])
        return None

    def log_text(self) -> str:
        if self.base is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.base / "log").read_text(errors="replace")
        return ""

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def new_database(self) -> str:
        """A new empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with contextlib.suppress(Exception), self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.base is None or self.bindir is None:
            return
        with contextlib.suppress(PostgresServerError, subprocess.SubprocessError):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-m",
                      "immediate", "-w", "stop")  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None


if __name__ == "__main__":  # pragma: no cover - a helper for trying things by hand
    server = PostgresServer().start()
    print(server.new_database() if "--database" in sys.argv else server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
