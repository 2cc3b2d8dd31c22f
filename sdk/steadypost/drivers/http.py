"""The httpx boundary: send a :class:`~steadypost.flow.Request`, get a
:class:`~steadypost.flow.Response`, and translate every httpx error.

This is the only module that catches httpx exceptions. Connect-phase failures
become :class:`~steadypost.errors.ConnectFailedError` (nothing reached the
server); failures after the request started become
:class:`~steadypost.errors.ConnectionLostError` (it may have been processed).
The original exception is kept as ``__cause__``.

File bodies are streamed from disk in ``block_size`` pieces with an explicit
``Content-Length``, so memory does not grow with the chunk or the file. On the
uploader's own clients the socket sends each block itself, without a copy through
Python (:mod:`steadypost.drivers.blocks`); elsewhere each is read into ``bytes``.

**Every exchange has a deadline** (see :class:`~steadypost.models.Timeouts`):
``exchange + body_length / min_rate`` seconds from the start. ``send`` puts it
in a context variable (:func:`current_deadline`; per thread and per asyncio
task), and

* the uploader's own clients (:mod:`steadypost.drivers.clients`) read it in their
  httpcore network backend: every connect, TLS handshake, socket read and
  socket write is given at most the time left, so a server dripping its status
  line or headers one byte at a time, or reading the body at a trickle, is cut
  at the deadline like a silent one;
* with an ``httpx.Client`` you pass in, its transport is yours, so steadypost
  enforces the deadline only where its own code runs: before each body block
  (``block_size``) is handed to httpx, after each part of the answer's body,
  and by capping each per-operation timeout of the request at the whole
  deadline. Not covered there: the status line and headers (a server dripping
  them, up to httpcore's 100 KiB limit, or sending "100 Continue" forever, is
  bounded only by your read timeout per read), and the time one body block
  takes to write. Build your client with the uploader's transport if you need
  those bounds too, or leave ``client`` unset.

A missed deadline is a :class:`~steadypost.errors.ConnectionLostError`
("the answer did not come within N s"), or a
:class:`~steadypost.errors.ConnectFailedError` if the connection was not up.
Whatever the server sends (a malformed status line, bad header bytes, an
oversized header block, a broken chunked body, a Content-Length it does not
keep), only a :class:`~steadypost.errors.SteadypostError` leaves ``send``.
"""

from __future__ import annotations

import contextvars
import hashlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import MappingProxyType
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from steadypost.drivers import bandwidth
from steadypost.drivers.files import OpenedFile
from steadypost.errors import (
    CertificateError,
    ConnectFailedError,
    ConnectionLostError,
    ProtocolError,
    SteadypostError,
    TransportError,
)
from steadypost.flow import FileBody, Request, Response
from steadypost.models import Timeouts

DEFAULT_BLOCK_SIZE = 512 * 1024
#: Answers are small JSON or empty; a server sending more is cut off here.
MAX_RESPONSE_BYTES = 1024 * 1024

if TYPE_CHECKING:  # (blocks imports h11: loaded with the uploader's own transports)
    from steadypost.drivers.blocks import BlockSink

C = TypeVar("C", httpx.Client, httpx.AsyncClient)

BodyProgress = Callable[[FileBody, int], None]
"""Called with the body and the file position reached after each block is handed to httpx."""


class Deadline:
    """The deadline of the exchange in flight, on the monotonic clock.

    It is not shortened once the body is out: the last megabytes of a body
    may still sit in the kernel's send buffer, draining at the uplink's speed.
    """

    __slots__ = ("at", "body_length", "hit", "limit_s", "sink", "what")

    def __init__(self, timeouts: Timeouts, request: Request) -> None:
        self.what = f"{request.method} {request.url}"
        self.body_length = request.body_length
        self.limit_s = timeouts.deadline_s(request.body_length, request.timeout_s)
        self.at = time.monotonic() + self.limit_s
        self.hit = False
        """Set when an operation was cut because the deadline came first."""
        self.sink: BlockSink | None = None
        """The socket carrying this exchange, once it wrote the request's head, if it can
        send file blocks itself (see :class:`BlockSink`)."""

    def left(self) -> float:
        return self.at - time.monotonic()

    def clamp(self, timeout: float | None) -> tuple[float, bool]:
        """The timeout to give one operation, and whether the deadline set it."""
        left = self.at - time.monotonic()
        if timeout is None or left <= timeout:
            if left <= 0:
                self.hit = True
            return max(left, 0.0), True
        return timeout, False

    def check(self) -> None:
        """Raise the missed-deadline error if no time is left."""
        if self.at - time.monotonic() <= 0:
            self.hit = True
            raise self.missed()

    def missed(self, *, connected: bool = True) -> TransportError:
        if not connected:
            return ConnectFailedError(
                f"{self.what}: could not connect within the exchange deadline "
                f"({self.limit_s:g} s)"
            )
        body = f" with a {self.body_length}-byte body" if self.body_length else ""
        return ConnectionLostError(
            f"{self.what}: the answer did not come within {self.limit_s:g} s "
            f"(the exchange deadline{body}); the server may have acted on the request"
        )


_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "steadypost_exchange_deadline", default=None
)


def current_deadline() -> Deadline | None:
    """The deadline of the exchange this thread or task is sending, if any."""
    return _CURRENT.get()


def translate(
    exc: httpx.HTTPError, request: Request, deadline: Deadline | None = None
) -> TransportError:
    """Map an httpx exception to a steadypost one (the caller raises it ``from exc``)."""
    what = f"{request.method} {request.url}"
    verify_failure = _certificate_failure(exc)
    if verify_failure is not None:
        return CertificateError(
            f"{what}: the server's TLS certificate could not be verified "
            f"({verify_failure.verify_message}); nothing was sent"
        )
    connect_phase = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if deadline is not None and deadline.hit and isinstance(exc, httpx.TimeoutException):
        return deadline.missed(connected=not connect_phase)
    if connect_phase:
        return ConnectFailedError(f"{what}: could not connect ({type(exc).__name__}: {exc})")
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionLostError(f"{what}: timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.LocalProtocolError):
        return ConnectionLostError(
            f"{what}: the request could not be sent as HTTP/1.1 ({type(exc).__name__}: {exc})"
        )
    if isinstance(exc, httpx.ProtocolError):
        return ConnectionLostError(
            f"{what}: the answer is not valid HTTP/1.1 ({type(exc).__name__}: {exc})"
        )
    if isinstance(exc, httpx.DecodingError):
        return ConnectionLostError(
            f"{what}: the answer's body could not be decoded ({type(exc).__name__}: {exc})"
        )
    return ConnectionLostError(f"{what}: connection lost ({type(exc).__name__}: {exc})")


def _unexpected(exc: Exception, request: Request) -> ConnectionLostError:
    """Anything else httpx or h11 raised while reading an answer (the server's nonsense)."""
    return ConnectionLostError(
        f"{request.method} {request.url}: the answer could not be read "
        f"({type(exc).__name__}: {exc})"
    )


def _certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (httpx chains it as the cause)."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> ssl; bounded in case of a cycle
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def to_httpx_timeout(
    timeouts: Timeouts, read_override: float | None = None, limit_s: float | None = None
) -> httpx.Timeout:
    """httpx's per-operation timeouts; with ``limit_s``, none is longer than that."""

    def cap(value: float) -> float:
        return value if limit_s is None else min(value, limit_s)

    return httpx.Timeout(
        connect=cap(timeouts.connect),
        read=cap(read_override if read_override is not None else timeouts.read),
        write=cap(timeouts.write),
        pool=cap(timeouts.pool),
    )


def _reader(body: FileBody, file: OpenedFile | None) -> OpenedFile:
    """The run's open file for ``body`` (or one opened for it alone); the caller releases it."""
    if file is not None and file.path == body.file.path:
        return file.acquire()
    return OpenedFile(body.file.path, body.file.identity)


def _blocks(body: FileBody, file: OpenedFile, block_size: int) -> Iterator[bytes]:
    """``body``'s bytes from ``file``, ``block_size`` at a time, after checking the file."""
    file.check("while it was uploaded")
    position, end = body.offset, body.end
    while position < end:
        data = file.read(min(block_size, end - position), position)
        position += len(data)
        yield data


def digest_body(
    body: FileBody, algorithm: str, file: OpenedFile | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> bytes:  # fmt: skip
    """The raw digest of a file body (for ``Upload-Checksum``), read from ``file`` if given."""
    reader = _reader(body, file)
    try:
        h = hashlib.new(algorithm)
        for block in _blocks(body, reader, block_size):
            h.update(block)
        return h.digest()
    finally:
        reader.release()


def _iter_file(
    body: FileBody,
    file: OpenedFile | None,
    block_size: int,
    on_body: BodyProgress | None,
    check_cancelled: Callable[[], None] | None,
    deadline: Deadline,
) -> Iterator[bytes]:
    """``body`` for httpx, one block at a time; cancellation and the deadline between blocks.

    Each block is the file's bytes (``pread``) or, when the socket sending
    this exchange is a :class:`BlockSink`, its stand-in (the socket reads the
    file itself). Either way exactly ``length`` bytes of the file go out per
    block, or a :class:`~steadypost.errors.FileProblemError` is raised.
    """
    reader = _reader(body, file)
    try:
        reader.check("while it was uploaded")
        if body.prefix:
            yield body.prefix
        position, end = body.offset, body.end
        while position < end:
            length = min(block_size, end - position)
            if check_cancelled is not None:
                check_cancelled()
            bandwidth.throttle(length, check_cancelled)  # --bwlimit: once per block (or no-op)
            deadline.check()
            sink = deadline.sink
            if sink is None:
                block = reader.read(length, position)
                length = len(block)
            else:
                block = sink.file_block(reader, position, length)
            yield block
            position += length
            if on_body is not None:
                on_body(body, position)
        if body.suffix:
            yield body.suffix
    finally:
        reader.release()


class _Kept:
    """The start of an answer's body, up to :data:`MAX_RESPONSE_BYTES`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, part: bytes) -> bool:
        """Keep ``part``; ``False`` once enough is kept (the rest is not read)."""
        self._parts.append(part)
        self._size += len(part)
        return self._size <= MAX_RESPONSE_BYTES

    @property
    def content(self) -> bytes:
        return b"".join(self._parts)[:MAX_RESPONSE_BYTES]


def _response(resp: httpx.Response, content: bytes) -> Response:
    return Response(
        status=resp.status_code,
        headers=MappingProxyType({k.lower(): v for k, v in resp.headers.items()}),
        content=content,
        url=str(resp.url),
    )


def _build(
    client: httpx.Client | httpx.AsyncClient,
    request: Request,
    content: object,
    timeouts: Timeouts,
    deadline: Deadline,
) -> httpx.Request:
    headers = dict(request.headers)
    if request.body is not None:
        headers["Content-Length"] = str(request.body_length)
    try:
        return client.build_request(
            request.method,
            request.url,
            headers=headers,
            content=content,  # type: ignore[arg-type]
            timeout=to_httpx_timeout(timeouts, request.timeout_s, deadline.limit_s),
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, UnicodeError) as exc:
        raise ProtocolError(
            f"{request.method} {request.url}: cannot be sent ({type(exc).__name__}: {exc})"
        ) from exc


class _Http(Generic[C]):
    """What both HTTP layers hold: the client, the timeouts, and how bodies are read."""

    def __init__(
        self,
        client: C,
        *,
        timeouts: Timeouts,
        block_size: int = DEFAULT_BLOCK_SIZE,
        on_body: BodyProgress | None = None,
        check_cancelled: Callable[[], None] | None = None,
        file: OpenedFile | None = None,
    ) -> None:
        self.client: C = client
        self.file = file
        """The run's open video file: every body of its file is read from it."""
        self.timeouts = timeouts
        self.block_size = block_size
        self.on_body = on_body
        self.check_cancelled = check_cancelled

    def _blocks(self, body: FileBody, deadline: Deadline) -> Iterator[bytes]:
        return _iter_file(body, self.file, self.block_size, self.on_body, self.check_cancelled,
                          deadline)  # fmt: skip


class SyncHttp(_Http[httpx.Client]):
    """Sends requests with an ``httpx.Client`` (pooled, keep-alive), each under its deadline."""

    def send(self, request: Request) -> Response:
        deadline = Deadline(self.timeouts, request)
        token = _CURRENT.set(deadline)
        try:
            return self._send(request, deadline)
        finally:
            _CURRENT.reset(token)

    def _send(self, request: Request, deadline: Deadline) -> Response:
        body = request.body
        content = self._blocks(body, deadline) if isinstance(body, FileBody) else body
        req = _build(self.client, request, content, self.timeouts, deadline)
        try:
            resp = self.client.send(req, stream=True)
            try:
                kept = _Kept()
                for part in resp.iter_bytes():
                    if not kept.add(part):
                        break
                    deadline.check()
            finally:
                resp.close()
            return _response(resp, kept.content)
        except SteadypostError:
            raise
        except httpx.HTTPError as exc:
            raise translate(exc, request, deadline) from exc
        except Exception as exc:  # h11/httpx internals on a hostile answer
            raise _unexpected(exc, request) from exc


class AsyncHttp(_Http[httpx.AsyncClient]):
    """Sends requests with an ``httpx.AsyncClient`` (pooled, keep-alive), under deadlines."""

    async def _stream(self, body: FileBody, deadline: Deadline) -> AsyncIterator[bytes]:
        # Reading one block from local disk is short; it runs inline, not in a thread.
        for block in self._blocks(body, deadline):
            yield block

    async def send(self, request: Request) -> Response:
        deadline = Deadline(self.timeouts, request)
        token = _CURRENT.set(deadline)
        try:
            return await self._send(request, deadline)
        finally:
            _CURRENT.reset(token)

    async def _send(self, request: Request, deadline: Deadline) -> Response:
        body = request.body
        content = self._stream(body, deadline) if isinstance(body, FileBody) else body
        req = _build(self.client, request, content, self.timeouts, deadline)
        try:
            resp = await self.client.send(req, stream=True)
            try:
                kept = _Kept()
                async for part in resp.aiter_bytes():
                    if not kept.add(part):
                        break
                    deadline.check()
            finally:
                await resp.aclose()
            return _response(resp, kept.content)
        except SteadypostError:
            raise
        except httpx.HTTPError as exc:
            raise translate(exc, request, deadline) from exc
        except Exception as exc:  # h11/httpx internals on a hostile answer
            raise _unexpected(exc, request) from exc


__all__ = [
    "AsyncHttp",
    "Deadline",
    "SteadypostError",
    "SyncHttp",
    "current_deadline",
    "digest_body",
    "translate",
]
