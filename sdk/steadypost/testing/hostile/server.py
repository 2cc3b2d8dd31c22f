"""A real-socket hostile HTTP/1.1 server on 127.0.0.1, for tests and benchmarks.

:class:`HostileServer` is a small threaded raw-socket server (a thread per
connection, keep-alive) with two layers:

* **the wire** (:mod:`steadypost.testing.hostile.wire`): how any answer goes
  out: all at once (:class:`Sent`), after a :class:`Delay`, in a
  :class:`Drip`, never (:class:`Silent`), :class:`Cut` mid-answer, as a
  :class:`Reset`, or as :class:`Garbage`;
* **an honest tus 1.0 core** (:mod:`steadypost.testing.hostile.tus`) keeping
  each upload's bytes in memory, bent by a named behaviour
  (:data:`BEHAVIOURS`: ``patch-same-offset``, ``ack-one-byte``,
  ``head-creeps``, ``drip``, ``silent``, ``head-lies``, ... and ``honest``).

It counts every request and every request body byte it received, so a test
or benchmark can measure how a client behaves against it::

    from steadypost import Uploader
    from steadypost.testing import HostileServer

    with HostileServer("patch-same-offset") as server:
        ...  # upload to server.endpoint, in a thread or a subprocess, for a while
        print(server.request_count, server.body_bytes)   # the flood, measured

    with HostileServer(app=lambda seen, body: Answer(200, body=b"hi"),
                       wire=Drip(size=1, every_s=0.1)) as server:
        ...  # any answer, dripped one byte every 0.1 s

It listens on 127.0.0.1 only (``port=0``: a free port), never crashes on a
client that hangs up (unexpected handler errors are kept in ``errors``), and
``stop()`` (or leaving the ``with`` block) ends every connection at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType, TracebackType

from steadypost.testing.hostile.tus import BEHAVIOURS, Behaviour, TusCore, TusUpload
from steadypost.testing.hostile.wire import (
    Answer,
    Cut,
    Delay,
    Drip,
    Garbage,
    Reset,
    Seen,
    Sent,
    Silent,
    Wire,
)

__all__ = [
    "BEHAVIOURS",
    "Answer",
    "App",
    "Behaviour",
    "Cut",
    "Delay",
    "Drip",
    "Garbage",
    "HostileServer",
    "Reset",
    "Seen",
    "Sent",
    "Silent",
    "TusCore",
    "TusUpload",
    "Wire",
]

LOOPBACK = "127.0.0.1"
App = Callable[[Seen, bytes], Answer]
"""Decides the answer to a request (its head and its whole body)."""

_POLL_S = 0.2
_RECV = 256 * 1024


class _ClosedError(Exception):
    """The client hung up (or the server is stopping)."""


class HostileServer:
    """A hostile (or honest) HTTP/1.1 server on ``http://127.0.0.1:<port>``.

    ``behaviour`` names one of :data:`BEHAVIOURS` (or is a :class:`Behaviour`);
    it sets the tus core's twist and the wire behaviour of the answers to
    ``PATCH``. ``app`` replaces the tus core with your own answers. ``wire``
    replaces the behaviour's wire; it applies to ``wire_methods`` (default:
    the behaviour's, or every method when you give ``app`` or ``wire``), and
    to the first ``wire_times`` of those answers only if set.
    ``body_read_rate`` (bytes/s) reads request bodies at a trickle.
    """

    def __init__(
        self,
        behaviour: str | Behaviour = "honest",
        *,
        app: App | None = None,
        wire: Wire | None = None,
        wire_methods: Iterable[str] | None = None,
        wire_times: int | None = None,
        body_read_rate: float | None = None,
        max_size: int | None = None,
        max_head_bytes: int = 64 * 1024,
        port: int = 0,
    ) -> None:
        if isinstance(behaviour, str):
            if behaviour not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {behaviour!r}; one of {sorted(BEHAVIOURS)}")
            behaviour = BEHAVIOURS[behaviour]
        self.behaviour = behaviour
        self.core = TusCore(behaviour.twist, base_url=lambda: self.url, max_size=max_size)
        self.app: App = app or self.core
        self.wire: Wire = wire or behaviour.wire or Sent()
        if wire_methods is None:
            own = app is not None or wire is not None
            wire_methods = () if own else behaviour.wire_methods
        self.wire_methods = frozenset(m.upper() for m in wire_methods)
        self.wire_times = wire_times
        self.body_read_rate = body_read_rate
        self.max_head_bytes = max_head_bytes
        self._requested_port = port
        self.port = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._live: set[socket.socket] = set()
        self._log: list[Seen] = []
        self._twisted = 0
        self._body_bytes = 0
        self.connections = 0
        self.errors: list[str] = []
        """Unexpected exceptions in a connection's handler (a test asserts there are none)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        if not self.port:
            raise RuntimeError("the server is not running; use start() or a with block")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The tus creation endpoint, ``url + "/files"``."""
        return f"{self.url}/files"

    def start(self) -> HostileServer:
        if self._listener is not None:
            raise RuntimeError("the server is already running")
        listener = socket.create_server((LOOPBACK, self._requested_port))
        listener.settimeout(_POLL_S)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, listener)
        return self

    def stop(self) -> None:
        """Close the listener and every connection; wait (briefly) for the threads."""
        self._stop.set()
        with self._lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() now (Linux)
            self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=2.0)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what was received

    @property
    def requests(self) -> list[Seen]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._log)

    @property
    def body_bytes(self) -> int:
        """Request body bytes received in all (a client's wire cost)."""
        with self._lock:
            return self._body_bytes

    def count(self, method: str | None = None, *, since: float = 0.0, until: float = 1e300) -> int:
        """Requests (of ``method``) that arrived between two ``time.monotonic()`` stamps."""
        return sum(
            1 for s in self.requests
            if since <= s.at <= until and (method is None or s.method == method)
        )  # fmt: skip

    @property
    def authorizations(self) -> list[str]:
        """Every ``Authorization`` header value received."""
        return [a for s in self.requests if (a := s.header("authorization")) is not None]

    @property
    def uploads(self) -> dict[str, TusUpload]:
        with self.core.lock:
            return dict(self.core.uploads)

    def stored(self, upload_id: str | None = None) -> bytes:
        """The bytes the tus core holds for ``upload_id`` (default: the only upload)."""
        with self.core.lock:
            if upload_id is None:
                if len(self.core.uploads) != 1:
                    raise LookupError(f"{len(self.core.uploads)} uploads, not one")
                upload_id = next(iter(self.core.uploads))
            return bytes(self.core.uploads[upload_id].data)

    # ------------------------------------------------------------------ serving

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            with self._lock:
                self._live.add(sock)
                self.connections += 1
            self._spawn(self._serve, sock)

    def _serve(self, sock: socket.socket) -> None:
        buffer = bytearray()
        try:
            sock.settimeout(_POLL_S)
            while not self._stop.is_set() and self._one(sock, buffer):
                pass
        except (_ClosedError, OSError):
            pass
        except Exception as exc:  # a bug here must not kill the server; tests see it
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._live.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _recv(self, sock: socket.socket, size: int = _RECV) -> bytes:
        while True:
            if self._stop.is_set():
                raise _ClosedError
            try:
                data = sock.recv(size)
            except TimeoutError:
                continue
            if not data:
                raise _ClosedError
            return data

    def _one(self, sock: socket.socket, buffer: bytearray) -> bool:
        """Serve one request; whether the connection stays open for another."""
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > self.max_head_bytes:
                sock.sendall(Answer(431, (("Connection", "close"),)).encode())
                return False
            buffer += self._recv(sock)
        head, rest = bytes(buffer[:end]), buffer[end + 4 :]
        buffer[:] = rest
        at = time.monotonic()
        try:
            method, path, version, headers = _parse_head(head)
        except ValueError:
            sock.sendall(Answer(400, (("Connection", "close"),)).encode())
            return False
        length_text = headers.get("content-length", "0")
        if "transfer-encoding" in headers or not (length_text.isascii() and length_text.isdigit()):
            sock.sendall(Answer(411, (("Connection", "close"),)).encode())
            return False
        body = self._read_body(sock, buffer, int(length_text))
        seen = Seen(method, path, MappingProxyType(headers), len(body), at)
        with self._lock:
            index = len(self._log)
            self._log.append(seen)
        if len(body) < int(length_text):
            raise _ClosedError  # the client hung up mid-body
        answer = self.app(seen, body)
        wire = self._wire_for(method)
        if wire.answers:
            with self._lock:
                self._log[index] = dataclasses.replace(seen, status=answer.status)
        keep = wire.send(sock, answer.encode(head_only=method == "HEAD"), self._stop)
        closing = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        return keep and not closing

    def _read_body(self, sock: socket.socket, buffer: bytearray, length: int) -> bytes:
        """Up to ``length`` body bytes (fewer if the client hangs up), counted as they come."""
        parts = [bytes(buffer[:length])]
        got = len(parts[0])
        del buffer[:length]
        self._count_body(got)
        rate = self.body_read_rate
        piece = _RECV if rate is None else max(1, int(rate * _POLL_S / 2))
        while got < length:
            if rate is not None and self._stop.wait(piece / rate):
                break
            try:
                data = self._recv(sock, min(piece, length - got))
            except _ClosedError:
                break
            parts.append(data)
            got += len(data)
            self._count_body(len(data))
        return b"".join(parts)

    def _count_body(self, n: int) -> None:
        with self._lock:
            self._body_bytes += n

    def _wire_for(self, method: str) -> Wire:
        if self.wire_methods and method not in self.wire_methods:
            return Sent()
        with self._lock:
            if self.wire_times is not None and self._twisted >= self.wire_times:
                return Sent()
            self._twisted += 1
        return self.wire


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(version)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(line)
        headers[name.strip().lower()] = value.strip()
    path = path.split("?", 1)[0]
    if path.startswith("http://"):  # absolute form (a proxy request)
        path = "/" + path.split("/", 3)[-1]
    return method.upper(), path, version, headers
