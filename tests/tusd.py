"""Start, stop and inspect the reference tus server (``@tus/server`` + ``@tus/file-store``).

Used by the integration tests (through the fixtures in ``conftest.py``) and by the
benchmarks (``benchmarks/throughput.py`` puts this directory on ``sys.path``).

The server is ``tests/tus_server.mjs`` run by the machine's ``node``; its packages come from
``tests/package-lock.json`` via ``npm ci --prefix tests``. It listens on 127.0.0.1 only.

Storage layout of ``@tus/file-store`` 2.x (one flat directory, no sub-directories):

``<dir>/<id>``
    the upload's bytes; its size *is* the server's ``Upload-Offset`` (the store stats the
    file, it keeps no separate offset counter).
``<dir>/<id>.json``
    the upload's info as JSON, written at creation (and again only when a deferred length
    is declared): ``{"id", "metadata": {key: value-or-null}, "size", "offset",
    "creation_date"}``. ``size`` is the Upload-Length (absent while deferred); ``offset``
    is stale (always the value at creation, 0), so never read the offset from here.

Upload ids are 32 lowercase hex characters, the last path segment of the Location URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

__all__ = [
    "NODE_MODULES",
    "SERVER_SCRIPT",
    "TESTS_DIR",
    "StoredUpload",
    "TusServer",
    "TusServerError",
    "TusServerUnavailableError",
    "check_node_setup",
    "sha256_file",
    "upload_id_of",
]

TESTS_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = TESTS_DIR / "tus_server.mjs"
NODE_MODULES = TESTS_DIR / "node_modules"
REQUIRED_PACKAGES = ("@tus/server", "@tus/file-store")
INSTALL_HINT = "run `npm ci --prefix tests` from the repository root"
LISTENING_PREFIX = "LISTENING "


class TusServerError(RuntimeError):
    """The reference tus server failed to start or misbehaved."""


class TusServerUnavailableError(TusServerError):
    """Node.js or the server's npm packages are not installed."""


def check_node_setup(tests_dir: Path = TESTS_DIR) -> str:
    """Return the ``node`` executable, or raise :class:`TusServerUnavailableError` with a fix.

    Checks that node is on PATH (or ``$STEADYPOST_NODE``) and that ``tests/node_modules`` holds
    exactly the versions that ``tests/package.json`` pins.
    """
    node = os.environ.get("STEADYPOST_NODE") or shutil.which("node")
    if not node:
        raise TusServerUnavailableError(
            "Node.js (`node`) is not on PATH; the integration tests run the reference tus "
            f"server with it. Install Node.js >= 20.19, then {INSTALL_HINT}."
        )
    manifest = json.loads((tests_dir / "package.json").read_text(encoding="utf-8"))
    pins: dict[str, str] = manifest.get("dependencies", {})
    for package in REQUIRED_PACKAGES:
        installed = tests_dir / "node_modules" / package / "package.json"
        if not installed.is_file():
            raise TusServerUnavailableError(
                f"{installed.parent} is missing: the reference tus server's npm packages are "
                f"not installed. {INSTALL_HINT[0].upper()}{INSTALL_HINT[1:]}."
            )
        version = json.loads(installed.read_text(encoding="utf-8")).get("version")
        wanted = pins.get(package)
        if wanted is not None and version != wanted:
            raise TusServerUnavailableError(
                f"{package} {version} is installed but tests/package.json pins {wanted}: "
                f"{INSTALL_HINT}."
            )
    return node


def upload_id_of(upload_id_or_url: str) -> str:
    """Accept an upload id or its upload URL and return the id."""
    if "/" not in upload_id_or_url:
        return upload_id_or_url
    segment = urlsplit(upload_id_or_url).path.rstrip("/").rsplit("/", 1)[-1]
    if not segment:
        raise ValueError(f"no upload id in {upload_id_or_url!r}")
    return segment


@dataclass(frozen=True)
class StoredUpload:
    """One upload as ``@tus/file-store`` keeps it on disk."""

    id: str
    stored_bytes: int
    """Size of the data file: the offset the server reports in HEAD."""
    length: int | None
    """Upload-Length from the ``.json`` info file; None while the length is deferred."""
    metadata: dict[str, str | None]
    creation_date: str | None
    data_path: Path
    info_path: Path
    info: dict[str, Any] = field(repr=False, compare=False)
    """The raw ``.json`` info, as the server wrote it."""

    @property
    def completed(self) -> bool:
        return self.length is not None and self.stored_bytes == self.length


class TusServer:
    """The reference tus server in a child process, on 127.0.0.1.

    ``port=0`` picks a free port at the first :meth:`start`; :meth:`restart` reuses that
    port and the same storage directory, so upload URLs and stored bytes survive it.

    Options map to ``tests/tus_server.mjs`` settings: ``expiration_ms`` (expiration
    extension: 410 after that age, ``Upload-Expires`` sent), ``cleanup_interval_ms`` (also
    delete expired unfinished uploads periodically), ``max_size`` (``Tus-Max-Size``, 413 above
    it), ``relative_location`` (POST answers ``Location: /files/<id>``), ``log_requests``
    (one stderr line per request in :attr:`log_path`), ``tls_cert`` / ``tls_key`` (PEM files:
    serve HTTPS with Node's own ``https``; the endpoint and every Location are ``https://``).
    """

    def __init__(
        self,
        storage_dir: Path | str,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        expiration_ms: int | None = None,
        cleanup_interval_ms: int | None = None,
        max_size: int | None = None,
        relative_location: bool = False,
        log_requests: bool = True,
        log_path: Path | str | None = None,
        startup_timeout: float = 30.0,
        tls_cert: Path | str | None = None,
        tls_key: Path | str | None = None,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        self.tls = (Path(tls_cert), Path(tls_key)) if tls_cert and tls_key else None
        self.storage_dir = Path(storage_dir).resolve()
        self.host = host
        self.port = port
        self.expiration_ms = expiration_ms
        self.cleanup_interval_ms = cleanup_interval_ms
        self.max_size = max_size
        self.relative_location = relative_location
        self.log_requests = log_requests
        self.log_path = (
            Path(log_path)
            if log_path is not None
            else self.storage_dir.with_name(self.storage_dir.name + ".server.log")
        )
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._endpoint: str | None = None
        self.starts = 0

    # ----------------------------------------------------------------- lifecycle

    @property
    def endpoint(self) -> str:
        """Creation URL, e.g. ``http://127.0.0.1:PORT/files/`` (valid once started)."""
        if self._endpoint is None:
            raise TusServerError("the tus server has not been started")
        return self._endpoint

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS)."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def upload_url(self, upload_id: str) -> str:
        """The absolute URL of an upload id on this server."""
        return self.endpoint + upload_id_of(upload_id)

    def start(self) -> TusServer:
        """Start the server (on :attr:`port`, 0 = a free one) and wait until it listens."""
        if self.running:
            raise TusServerError("the tus server is already running")
        node = check_node_setup()
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                self._spawn(node, deadline)
                break
            except _AddressInUseError:
                # Only a fixed port (a restart) can meet this, e.g. while the kernel still
                # tears down the previous process's socket. Try again briefly.
                if time.monotonic() >= deadline:
                    raise TusServerError(
                        f"port {self.port} stayed in use for {self.startup_timeout:.0f} s; "
                        f"server log: {self.log_path}"
                    ) from None
                time.sleep(0.1)
        self.starts += 1
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then wait (SIGKILL after ``timeout``). Returns the exit code, if it ran."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the server, as a crash would. The storage directory is left as it was."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._reap()

    def restart(self, *, hard: bool = False) -> TusServer:
        """Stop (SIGKILL if ``hard``) and start again on the same port and storage dir."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start()

    def __enter__(self) -> TusServer:
        return self.start() if not self.running else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_text(self) -> str:
        """Everything the server wrote on stderr so far (all starts)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _spawn(self, node: str, deadline: float) -> None:
        cmd = [
            node,
            str(SERVER_SCRIPT),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.storage_dir),
        ]
        if self.expiration_ms:
            cmd += ["--expiration-ms", str(self.expiration_ms)]
        if self.cleanup_interval_ms:
            cmd += ["--cleanup-interval-ms", str(self.cleanup_interval_ms)]
        if self.max_size:
            cmd += ["--max-size", str(self.max_size)]
        if self.relative_location:
            cmd.append("--relative-location")
        if self.tls is not None:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUS_") and k != "DEBUG"}
        env["TUS_EXIT_ON_STDIN_EOF"] = "1"  # never outlive the Python process that owns us
        if self.log_requests:
            env["TUS_LOG_REQUESTS"] = "1"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=TESTS_DIR,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest only
            )
        assert proc.stdout is not None
        line = _read_line(proc.stdout, deadline)
        if line.startswith(LISTENING_PREFIX):
            self._proc = proc
            self._endpoint = line[len(LISTENING_PREFIX) :].strip()
            port = urlsplit(self._endpoint).port
            assert port is not None
            self.port = port
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        with self.log_path.open("rb") as log_file:
            log_file.seek(log_start)
            err = log_file.read().decode("utf-8", errors="replace")
        if "EADDRINUSE" in err and self.port != 0:
            raise _AddressInUseError
        reason = "timed out" if line == "" and proc.returncode == -signal.SIGKILL else "failed"
        raise TusServerError(
            f"the tus server {reason} to start (exit code {proc.returncode}); "
            f"command: {' '.join(cmd)}\nstdout: {line!r}\nstderr:\n{err}"
        )

    def _reap(self) -> None:
        proc = self._proc
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self._proc = None

    # ------------------------------------------------------------- inspection

    def _data_path(self, upload_id: str) -> Path:
        return self.storage_dir / upload_id_of(upload_id)

    def _load(self, upload_id: str) -> StoredUpload:
        uid = upload_id_of(upload_id)
        data_path = self.storage_dir / uid
        info_path = self.storage_dir / f"{uid}.json"
        try:
            info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
            stored = data_path.stat().st_size
        except FileNotFoundError:
            raise KeyError(f"no stored upload {uid!r} in {self.storage_dir}") from None
        size = info.get("size")
        return StoredUpload(
            id=uid,
            stored_bytes=stored,
            length=int(size) if size is not None else None,
            metadata=dict(info.get("metadata") or {}),
            creation_date=info.get("creation_date"),
            data_path=data_path,
            info_path=info_path,
            info=info,
        )

    def uploads(self) -> list[StoredUpload]:
        """Every stored upload (a data file with its ``.json``), oldest first."""
        if not self.storage_dir.is_dir():
            return []
        found = []
        for info_path in self.storage_dir.glob("*.json"):
            uid = info_path.name[: -len(".json")]
            if (self.storage_dir / uid).is_file():
                with contextlib.suppress(KeyError):  # deleted meanwhile
                    found.append(self._load(uid))
        found.sort(key=lambda u: (u.creation_date or "", u.id))
        return found

    def upload(self, upload_id: str) -> StoredUpload:
        """One stored upload by id or URL; KeyError if the server has no such upload."""
        return self._load(upload_id)

    def completed(self) -> list[StoredUpload]:
        """Stored uploads whose bytes reached their Upload-Length."""
        return [u for u in self.uploads() if u.completed]

    def stored_bytes(self, upload_id: str) -> int:
        """Bytes the server holds for an upload (its offset)."""
        try:
            return self._data_path(upload_id).stat().st_size
        except FileNotFoundError:
            raise KeyError(f"no stored upload {upload_id_of(upload_id)!r}") from None

    def read_bytes(self, upload_id: str) -> bytes:
        """The stored bytes of an upload (for small uploads)."""
        try:
            return self._data_path(upload_id).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no stored upload {upload_id_of(upload_id)!r}") from None

    def sha256(self, upload_id: str) -> str:
        """Hex SHA-256 of the stored bytes of an upload."""
        try:
            return sha256_file(self._data_path(upload_id))
        except FileNotFoundError:
            raise KeyError(f"no stored upload {upload_id_of(upload_id)!r}") from None


class _AddressInUseError(Exception):
    pass


def sha256_file(path: Path | str, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_line(stream: IO[bytes], deadline: float) -> str:
    """Read one line from a child's stdout pipe without blocking past ``deadline``."""
    buf = bytearray()
    fd = stream.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    return buf.decode("utf-8", errors="replace").partition("\n")[0]
