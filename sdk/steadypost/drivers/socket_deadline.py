"""The uploader's own httpx transports: the exchange deadline on the socket, TLS on first use.

Made by :func:`steadypost.drivers.clients.default_client`; imported on first use so
that ``import steadypost`` does not load httpcore (httpx defers it too). See
:mod:`steadypost.drivers.clients` for what they do and why they exist.

**File bodies without copies through Python** (sync streams): once a stream has
written a request's head it offers itself as the exchange's
:class:`~steadypost.drivers.http.BlockSink`. The body iterator then gives httpx, for
each block, a stand-in ``bytes`` of the block's length (one per length, reused, never
filled: its pages are never touched), which h11 counts against ``Content-Length`` and
passes on as the same object. When the stand-in reaches :meth:`_Stream.write`, the
stream sends the file's bytes in its place:

* plain HTTP: ``os.sendfile`` from the run's open descriptor (the kernel moves page-cache
  pages to the socket; no read, no copy, no allocation in Python);
* TLS: ``preadv`` into one buffer kept by the stream, then ``SSLSocket.send`` of a
  memoryview of it (OpenSSL encrypts straight from that buffer).

It is the same descriptor and the same positions as a ``pread`` would use, so the
bytes sent are exactly the file's (a shorter file is a ``FileProblemError``). Every
wait for the socket gets at most the time left before the exchange deadline. h11 is
checked once, at import, to pass a body's ``bytes`` through unchanged; if a later h11
did not, streams never offer themselves and bodies are read into ``bytes`` as before.
A stand-in that reaches the socket in any other form is refused, never sent.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import h11
import httpcore
import httpx

from steadypost.drivers.files import OpenedFile
from steadypost.drivers.http import DEFAULT_BLOCK_SIZE, current_deadline
from steadypost.errors import FileProblemError

# httpx's own defaults (httpx.HTTPTransport's DEFAULT_LIMITS).
_MAX_CONNECTIONS = 100
_MAX_KEEPALIVE = 20
_KEEPALIVE_EXPIRY_S = 5.0


# ------------------------------------------------------------------ the deadline on the socket


class _Op:
    """One connect, read or write: its timeout cut to the current exchange deadline.

    ``timeout`` is what httpcore asked for; ``t`` what the operation gets. A
    timeout raised while the deadline set ``t`` marks the deadline as hit, so
    :func:`steadypost.drivers.http.translate` says which limit ended the exchange.
    """

    __slots__ = ("by_deadline", "deadline", "error", "timeout")

    def __init__(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> None:
        self.timeout, self.error = timeout, error
        self.deadline = current_deadline()
        self.by_deadline = False

    def t(self) -> float | None:
        """The timeout for the next socket call (raises ``error`` when no time is left)."""
        if self.deadline is None:
            return self.timeout
        t, self.by_deadline = self.deadline.clamp(self.timeout)
        if t <= 0:
            raise self.error("the exchange deadline passed")
        return t

    def __enter__(self) -> _Op:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        if (
            self.deadline is not None and self.by_deadline and kind is not None
            and issubclass(kind, httpcore.TimeoutException)
        ):  # fmt: skip
            self.deadline.hit = True


def _h11_passes_bytes_through() -> bool:
    """Whether h11 hands a ``Content-Length`` body's ``bytes`` on as the very same object."""
    try:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="PUT", target="/",
                              headers=[("Host", "x"), ("Content-Length", "4")]))  # fmt: skip
        probe = bytes(4)
        return conn.send(h11.Data(data=probe)) is probe
    except Exception:  # pragma: no cover - a very different h11
        return False


#: Streams offer to send file blocks themselves only if h11 keeps the stand-ins intact.
STAND_INS_PASS = _h11_passes_bytes_through()
#: sendfile errors that mean "not for this pair of descriptors": send from a buffer instead.
_NO_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK,
                          getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)})  # fmt: skip
_MAX_STAND_INS = 4


class _Block:
    """A file block whose stand-in is on its way through httpx and h11 to the stream."""

    __slots__ = ("file", "length", "position", "stand_in")

    def __init__(self, file: OpenedFile, position: int, length: int, stand_in: bytes) -> None:
        self.file, self.position, self.length, self.stand_in = file, position, length, stand_in


class _SendfileUnusableError(Exception):
    """sendfile cannot be used on this stream (nothing of the block was sent)."""


class _Stream(httpcore.NetworkStream):
    """A sync stream whose every read and write ends at the exchange deadline.

    It also sends request bodies' file blocks itself (see the module's docstring).
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        sock = inner.get_extra_info("socket")
        self._sock: socket.socket | None = sock if isinstance(sock, socket.socket) else None
        self._sendfile = (self._sock is not None and not isinstance(self._sock, ssl.SSLSocket)
                          and hasattr(os, "sendfile") and hasattr(select, "poll"))  # fmt: skip
        self._pending: _Block | None = None
        self._stand_ins: dict[int, bytes] = {}
        self._buffer: memoryview | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _Op(timeout, httpcore.ReadTimeout) as op:
            return self._inner.read(max_bytes, op.t())

    def file_block(self, file: OpenedFile, position: int, length: int) -> bytes:
        """The stand-in for ``length`` bytes of ``file`` at ``position`` (see BlockSink)."""
        stand_in = self._stand_ins.get(length)
        if stand_in is None:
            if len(self._stand_ins) >= _MAX_STAND_INS:
                self._stand_ins.clear()
            stand_in = self._stand_ins[length] = bytes(length)
        self._pending = _Block(file, position, length, stand_in)
        return stand_in

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _Op(timeout, httpcore.WriteTimeout) as op:
            if self._sock is None or op.deadline is None:
                self._inner.write(buffer, op.t())
                return
            block, self._pending = self._pending, None
            try:
                if block is None:
                    if STAND_INS_PASS:
                        op.deadline.sink = self  # the head is out: the body's blocks may follow
                    self._send(op, memoryview(buffer))
                elif buffer is block.stand_in:
                    self._send_block(op, block)
                else:  # h11 copied or joined it: refuse rather than send the stand-in's zeros
                    raise httpcore.LocalProtocolError("a file block reached the socket altered")
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(exc) from exc
            except OSError as exc:
                raise httpcore.WriteError(exc) from exc

    def _send(self, op: _Op, view: memoryview) -> None:
        # httpcore's SyncStream.write gives *each* send() the whole timeout, so a server
        # reading a few bytes now and then would hold a write forever: clamp per send().
        assert self._sock is not None
        while view:
            self._sock.settimeout(op.t())
            view = view[self._sock.send(view) :]

    def _send_block(self, op: _Op, block: _Block) -> None:
        if self._sendfile:
            try:
                self._sendfile_block(op, block)
                return
            except _SendfileUnusableError:
                self._sendfile = False
        self._send(op, self._fill(block))

    def _fill(self, block: _Block) -> memoryview:
        """The block's bytes, read into the stream's one buffer (grown only for a larger block)."""
        if self._buffer is None or len(self._buffer) < block.length:
            self._buffer = memoryview(bytearray(max(block.length, DEFAULT_BLOCK_SIZE)))
        view = self._buffer[: block.length]
        got = 0
        while got < block.length:
            got += block.file.read_into(view[got:], block.position + got)
        return view

    def _sendfile_block(self, op: _Op, block: _Block) -> None:
        assert self._sock is not None
        self._sock.settimeout(op.t())  # non-blocking, so that every wait below is bounded
        out, sent = self._sock.fileno(), 0
        while sent < block.length:
            try:
                n = os.sendfile(out, block.file.fd, block.position + sent, block.length - sent)
            except BlockingIOError:
                self._wait_writable(op, out)
                continue
            except OSError as exc:
                if sent == 0 and exc.errno in _NO_SENDFILE:
                    raise _SendfileUnusableError from exc
                raise
            if n == 0:
                raise FileProblemError(
                    f"{block.file.path} became shorter while it was being uploaded"
                )
            sent += n

    @staticmethod
    def _wait_writable(op: _Op, fd: int) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if not poller.poll(max(op.t() or 0.0, 0.001) * 1000):
            raise TimeoutError("the socket took no more bytes in time")

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        with _Op(timeout, httpcore.ConnectTimeout) as op:
            return _Stream(self._inner.start_tls(ssl_context, server_hostname, op.t()))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        with _Op(timeout, httpcore.ConnectTimeout) as op:
            return _Stream(
                self._inner.connect_tcp(host, port, op.t(), local_address, socket_options)
            )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - the uploader never uses a socket file
        with _Op(timeout, httpcore.ConnectTimeout) as op:
            return _Stream(self._inner.connect_unix_socket(path, op.t(), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    """The asyncio twin of :class:`_Stream` (anyio bounds a whole write by its timeout)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _Op(timeout, httpcore.ReadTimeout) as op:
            return await self._inner.read(max_bytes, op.t())

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _Op(timeout, httpcore.WriteTimeout) as op:
            await self._inner.write(buffer, op.t())

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _Op(timeout, httpcore.ConnectTimeout) as op:
            return _AsyncStream(await self._inner.start_tls(ssl_context, server_hostname, op.t()))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _Op(timeout, httpcore.ConnectTimeout) as op:
            inner = await self._inner.connect_tcp(host, port, op.t(), local_address, socket_options)
        return _AsyncStream(inner)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - the uploader never uses a socket file
        with _Op(timeout, httpcore.ConnectTimeout) as op:
            return _AsyncStream(await self._inner.connect_unix_socket(path, op.t(), socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# ------------------------------------------------------------------ httpx transports over them


def _pool(ssl_context: ssl.SSLContext | None) -> httpcore.ConnectionPool:
    return httpcore.ConnectionPool(
        ssl_context=ssl_context, max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_KEEPALIVE, keepalive_expiry=_KEEPALIVE_EXPIRY_S,
        network_backend=_Backend(),
    )  # fmt: skip


def _async_pool(ssl_context: ssl.SSLContext | None) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(
        ssl_context=ssl_context, max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_KEEPALIVE, keepalive_expiry=_KEEPALIVE_EXPIRY_S,
        network_backend=_AsyncBackend(),
    )  # fmt: skip


def http_transport(*, tls: bool) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` whose pool enforces the exchange deadline on the socket.

    httpx 0.28 cannot be given a network backend (encode/httpx#3749), so the pool it
    made is swapped for one with ours; if a later httpx has no ``_pool``, the transport
    stays stock (the deadline is then enforced as for a caller's client), and
    ``tests/test_driver_deadline.py`` fails to say so. It stays an ``HTTPTransport`` so
    that tools mocking httpx at that class (pytest-httpx) still see every request.
    ``tls=False``: a pool that never does TLS (no CA bundle loaded).
    """
    ssl_context = httpx.create_ssl_context() if tls else None
    transport = httpx.HTTPTransport(verify=ssl_context if ssl_context is not None else False)
    if isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        transport._pool.close()
        transport._pool = _pool(ssl_context)
    return transport


def async_http_transport(*, tls: bool) -> httpx.AsyncHTTPTransport:
    """The asyncio twin of :func:`http_transport`."""
    ssl_context = httpx.create_ssl_context() if tls else None
    transport = httpx.AsyncHTTPTransport(verify=ssl_context if ssl_context is not None else False)
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        transport._pool = _async_pool(ssl_context)  # nothing to close: no connection yet
    return transport


class LazyTLSTransport(httpx.BaseTransport):
    """``http://`` through one pool; ``https://`` through a verified pool made on first use."""

    def __init__(self) -> None:
        # No CA bundle for this pool: it never speaks TLS, https:// never reaches it.
        self._plain = http_transport(tls=False)
        self._tls: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def _secure(self) -> httpx.HTTPTransport:
        with self._lock:
            if self._tls is None:
                self._tls = http_transport(tls=True)
            return self._tls

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            return self._secure().handle_request(request)
        return self._plain.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


class AsyncLazyTLSTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`LazyTLSTransport` (one event loop: no lock needed)."""

    def __init__(self) -> None:
        self._plain = async_http_transport(tls=False)
        self._tls: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            if self._tls is None:
                self._tls = async_http_transport(tls=True)
            return await self._tls.handle_async_request(request)
        return await self._plain.handle_async_request(request)

    async def aclose(self) -> None:
        await self._plain.aclose()
        if self._tls is not None:
            await self._tls.aclose()
