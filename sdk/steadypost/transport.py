"""The httpx boundary: send a :class:`~steadypost.flow.Request`, get a
:class:`~steadypost.flow.Response`, and translate every httpx error.

This is the only module that catches httpx exceptions. Connect-phase failures
become :class:`~steadypost.errors.ConnectFailedError` (nothing reached the
server); failures after the request started become
:class:`~steadypost.errors.ConnectionLostError` (it may have been processed).
The original exception is kept as ``__cause__``.

File bodies are streamed from disk in ``block_size`` pieces with an explicit
``Content-Length``, so memory does not grow with the chunk or the file.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from types import MappingProxyType
from typing import Generic, TypeVar

import httpx

from ._fileio import OpenedFile
from .errors import (
    CertificateError,
    ConnectFailedError,
    ConnectionLostError,
    SteadypostError,
    TransportError,
)
from .flow import FileBody, Request, Response
from .models import Timeouts

DEFAULT_BLOCK_SIZE = 512 * 1024
#: Answers are small JSON or empty; a server sending more is cut off here.
MAX_RESPONSE_BYTES = 1024 * 1024

C = TypeVar("C", httpx.Client, httpx.AsyncClient)

BodyProgress = Callable[[FileBody, int], None]
"""Called with the body and the file position reached after each block is handed to httpx."""


def translate(exc: httpx.HTTPError, request: Request) -> TransportError:
    """Map an httpx exception to a steadypost one (the caller raises it ``from exc``)."""
    what = f"{request.method} {request.url}"
    verify_failure = _certificate_failure(exc)
    if verify_failure is not None:
        return CertificateError(
            f"{what}: the server's TLS certificate could not be verified "
            f"({verify_failure.verify_message}); nothing was sent"
        )
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectFailedError(f"{what}: could not connect ({type(exc).__name__}: {exc})")
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionLostError(f"{what}: timed out ({type(exc).__name__})")
    return ConnectionLostError(f"{what}: connection lost ({type(exc).__name__}: {exc})")


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


def to_httpx_timeout(timeouts: Timeouts, read_override: float | None = None) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeouts.connect,
        read=read_override if read_override is not None else timeouts.read,
        write=timeouts.write,
        pool=timeouts.pool,
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
) -> Iterator[bytes]:
    reader = _reader(body, file)
    try:
        position = body.offset
        if body.prefix:
            yield body.prefix
        for block in _blocks(body, reader, block_size):
            if check_cancelled is not None:
                check_cancelled()
            yield block
            position += len(block)
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
    client: httpx.Client | httpx.AsyncClient, request: Request, content: object, timeouts: Timeouts
) -> httpx.Request:
    headers = dict(request.headers)
    if request.body is not None:
        headers["Content-Length"] = str(request.body_length)
    return client.build_request(
        request.method,
        request.url,
        headers=headers,
        content=content,  # type: ignore[arg-type]
        timeout=to_httpx_timeout(timeouts, request.timeout_s),
    )


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

    def _blocks(self, body: FileBody) -> Iterator[bytes]:
        return _iter_file(body, self.file, self.block_size, self.on_body, self.check_cancelled)


class SyncHttp(_Http[httpx.Client]):
    """Sends requests with an ``httpx.Client`` (pooled, keep-alive)."""

    def send(self, request: Request) -> Response:
        body = request.body
        content = self._blocks(body) if isinstance(body, FileBody) else body
        req = _build(self.client, request, content, self.timeouts)
        try:
            resp = self.client.send(req, stream=True)
            try:
                kept = _Kept()
                for part in resp.iter_bytes():
                    if not kept.add(part):
                        break
            finally:
                resp.close()
        except httpx.HTTPError as exc:
            raise translate(exc, request) from exc
        return _response(resp, kept.content)


class AsyncHttp(_Http[httpx.AsyncClient]):
    """Sends requests with an ``httpx.AsyncClient`` (pooled, keep-alive)."""

    async def _stream(self, body: FileBody) -> AsyncIterator[bytes]:
        # Reading one block from local disk is short; it runs inline, not in a thread.
        for block in self._blocks(body):
            yield block

    async def send(self, request: Request) -> Response:
        body = request.body
        content = self._stream(body) if isinstance(body, FileBody) else body
        req = _build(self.client, request, content, self.timeouts)
        try:
            resp = await self.client.send(req, stream=True)
            try:
                kept = _Kept()
                async for part in resp.aiter_bytes():
                    if not kept.add(part):
                        break
            finally:
                await resp.aclose()
        except httpx.HTTPError as exc:
            raise translate(exc, request) from exc
        return _response(resp, kept.content)


__all__ = ["AsyncHttp", "SteadypostError", "SyncHttp", "digest_body", "translate"]
