"""The uploader's own httpx transports: the exchange deadline on the socket, TLS on first use.

Made by :func:`steadypost.drivers.clients.default_client`; imported on first use so
that ``import steadypost`` does not load httpcore (httpx defers it too). See
:mod:`steadypost.drivers.clients` for what they do and why they exist.

Request bodies' file blocks are sent by the streams themselves, without a copy through
Python: see :mod:`steadypost.drivers.blocks`.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from steadypost.drivers import blocks
from steadypost.drivers.blocks import Block, Sink
from steadypost.drivers.http import DEFAULT_BLOCK_SIZE, current_deadline

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


class _Stream(Sink, httpcore.NetworkStream):
    """A sync stream whose every read and write ends at the exchange deadline.

    It also sends request bodies' file blocks itself (see the module's docstring).
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        super().__init__()
        self._inner = inner
        sock = inner.get_extra_info("socket")
        self._sock: socket.socket | None = sock if isinstance(sock, socket.socket) else None
        self._sendfile = (self._sock is not None and not isinstance(self._sock, ssl.SSLSocket)
                          and hasattr(os, "sendfile") and hasattr(select, "poll"))  # fmt: skip
        self._buffer: memoryview | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _Op(timeout, httpcore.ReadTimeout) as op:
            return self._inner.read(max_bytes, op.t())

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _Op(timeout, httpcore.WriteTimeout) as op:
            if self._sock is None or op.deadline is None:
                self._inner.write(buffer, op.t())
                return
            block = self.arrived(buffer)
            try:
                if block is None:
                    if blocks.STAND_INS_PASS:
                        op.deadline.sink = self  # the head is out: the body's blocks may follow
                    self._send(op, memoryview(buffer))
                else:
                    self._send_block(op, block)
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

    def _send_block(self, op: _Op, block: Block) -> None:
        assert self._sock is not None
        if self._sendfile:
            try:
                blocks.sendfile(self._sock, block, op.t)
                return
            except blocks.SendfileUnusableError:
                self._sendfile = False
        self._send(op, self._fill(block))

    def _fill(self, block: Block) -> memoryview:
        """The block's bytes, read into the stream's one buffer (grown only for a larger block)."""
        if self._buffer is None or len(self._buffer) < block.length:
            self._buffer = memoryview(bytearray(max(block.length, DEFAULT_BLOCK_SIZE)))
        return blocks.fill(self._buffer[: block.length], block)

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


class _AsyncStream(Sink, httpcore.AsyncNetworkStream):
    """The asyncio twin of :class:`_Stream` (anyio bounds a whole write by its timeout).

    On plain TCP it sends file blocks with ``loop.sendfile`` (see the module's docstring).
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        super().__init__()
        self._inner = inner
        self._transport = blocks.plain_transport(inner)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _Op(timeout, httpcore.ReadTimeout) as op:
            return await self._inner.read(max_bytes, op.t())

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _Op(timeout, httpcore.WriteTimeout) as op:
            block = self.arrived(buffer)
            if block is None:
                if blocks.STAND_INS_PASS and self._transport and op.deadline is not None:
                    op.deadline.sink = self
                await self._inner.write(buffer, op.t())
            elif self._transport is None or not await blocks.loop_sendfile(
                self._transport, block, op.t
            ):
                self._transport = None  # (no sendfile here: read the blocks from now on)
                await self._inner.write(blocks.read(block), op.t())

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
