"""File blocks of request bodies sent by the socket itself, without a copy through Python.

Once one of the uploader's own streams (:mod:`steadypost.drivers.socket_deadline`) has
written a request's head, it offers itself as the exchange's :class:`BlockSink`. The body
iterator then gives httpx, for each block, a stand-in ``bytes`` of the block's length
(one per length, reused, never filled: its pages are never touched), which h11 counts
against ``Content-Length`` and passes on as the same object. When the stand-in reaches
the stream's ``write``, the stream sends the file's bytes in its place:

* plain HTTP: ``os.sendfile`` from the run's open descriptor (the kernel moves page-cache
  pages to the socket; no read, no copy, no allocation in Python);
* TLS: ``preadv`` into one buffer kept by the stream, then ``SSLSocket.send`` of a
  memoryview of it (OpenSSL encrypts straight from that buffer).

The asyncio streams do the same on plain HTTP with ``loop.sendfile`` on the connection's
transport (anyio keeps it as ``_transport``; without one, or under TLS, where anyio
encrypts through a memory BIO, each block is read into ``bytes`` and written as before:
an asyncio transport may keep a reference to what it is given, so a reused buffer
would not be safe there).

It is the same descriptor and the same positions as a ``pread`` would use, so the
bytes sent are exactly the file's (a shorter file is a ``FileProblemError``). Every
wait for the socket gets at most the time left before the exchange deadline. h11 is
checked once, at import, to pass a body's ``bytes`` through unchanged; if a later h11
did not, streams never offer themselves and bodies are read into ``bytes`` as before.
A stand-in that reaches the socket in any other form is refused, never sent.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from collections.abc import Callable
from typing import Protocol

import h11
import httpcore

from steadypost.drivers.files import OpenedFile
from steadypost.errors import FileProblemError

Timeout = Callable[[], "float | None"]
"""The time the next wait may take (raises the operation's timeout when none is left)."""


class BlockSink(Protocol):
    """A stream that sends a file's bytes itself (the uploader's own streams).

    :meth:`file_block` returns a stand-in ``bytes`` of ``length`` bytes for
    httpx and h11 to count; when the stand-in reaches the stream, it sends
    ``length`` bytes of ``file`` from ``position`` instead, or raises
    :class:`~steadypost.errors.FileProblemError` if the file has fewer.
    """

    def file_block(self, file: OpenedFile, position: int, length: int) -> bytes: ...


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


class Block:
    """A file block whose stand-in is on its way through httpx and h11 to the stream."""

    __slots__ = ("file", "length", "position", "stand_in")

    def __init__(self, file: OpenedFile, position: int, length: int, stand_in: bytes) -> None:
        self.file, self.position, self.length, self.stand_in = file, position, length, stand_in


class SendfileUnusableError(Exception):
    """sendfile cannot be used on this stream (nothing of the block was sent)."""


class Sink:
    """The stand-ins a stream hands out, and the block whose stand-in is on its way."""

    def __init__(self) -> None:
        self._pending: Block | None = None
        self._stand_ins: dict[int, bytes] = {}

    def file_block(self, file: OpenedFile, position: int, length: int) -> bytes:
        """The stand-in for ``length`` bytes of ``file`` at ``position`` (see BlockSink)."""
        stand_in = self._stand_ins.get(length)
        if stand_in is None:
            if len(self._stand_ins) >= _MAX_STAND_INS:
                self._stand_ins.clear()
            stand_in = self._stand_ins[length] = bytes(length)
        self._pending = Block(file, position, length, stand_in)
        return stand_in

    def arrived(self, buffer: bytes) -> Block | None:
        """The block ``buffer`` stands in for, or ``None`` for ordinary bytes."""
        block, self._pending = self._pending, None
        if block is not None and buffer is not block.stand_in:
            # h11 copied or joined it: refuse rather than send the stand-in's zeros.
            raise httpcore.LocalProtocolError("a file block reached the socket altered")
        return block


def shorter(file: OpenedFile) -> FileProblemError:
    return FileProblemError(f"{file.path} became shorter while it was being uploaded")


def read(block: Block) -> bytes:
    """The block's bytes in a new ``bytes`` (where the stream cannot send them itself)."""
    data = block.file.read(block.length, block.position)
    if len(data) < block.length:
        raise shorter(block.file)
    return data


def fill(view: memoryview, block: Block) -> memoryview:
    """Read the block into ``view`` (its length); raise if the file is shorter."""
    got = 0
    while got < block.length:
        got += block.file.read_into(view[got:], block.position + got)
    return view


def sendfile(sock: socket.socket, block: Block, timeout: Timeout) -> None:
    """Send the block with ``os.sendfile``; every wait for the socket bounded by ``timeout``.

    Raises :class:`SendfileUnusableError` (nothing sent) where sendfile cannot serve
    this pair of descriptors, ``TimeoutError`` or ``OSError`` like ``socket.send``.
    """
    sock.settimeout(timeout())  # non-blocking, so that every wait below is bounded
    out, sent = sock.fileno(), 0
    while sent < block.length:
        try:
            n = os.sendfile(out, block.file.fd, block.position + sent, block.length - sent)
        except BlockingIOError:
            poller = select.poll()
            poller.register(out, select.POLLOUT)
            t = timeout()
            if not poller.poll(None if t is None else max(t, 0.001) * 1000):
                raise TimeoutError("the socket took no more bytes in time") from None
            continue
        except OSError as exc:
            if sent == 0 and exc.errno in _NO_SENDFILE:
                raise SendfileUnusableError from exc
            raise
        if n == 0:
            raise shorter(block.file)
        sent += n


def plain_transport(inner: httpcore.AsyncNetworkStream) -> asyncio.Transport | None:
    """The asyncio transport under httpcore's anyio stream, if plain TCP (for sendfile)."""
    transport = getattr(getattr(inner, "_stream", None), "_transport", None)
    if (
        not isinstance(transport, asyncio.Transport) or not hasattr(os, "sendfile")
        or transport.get_extra_info("sslcontext") is not None
    ):  # fmt: skip
        return None
    return transport


async def loop_sendfile(transport: asyncio.Transport, block: Block, timeout: Timeout) -> bool:
    """Send ``block`` with ``loop.sendfile``; ``False`` if it cannot (nothing was sent)."""
    loop = asyncio.get_running_loop()
    with open(block.file.fd, "rb", buffering=0, closefd=False) as f:
        try:
            sent = await asyncio.wait_for(
                loop.sendfile(transport, f, block.position, block.length, fallback=False),
                timeout(),
            )
        except (asyncio.SendfileNotAvailableError, NotImplementedError):
            return False
        except asyncio.TimeoutError as exc:
            raise httpcore.WriteTimeout(exc) from exc
        except (OSError, RuntimeError) as exc:  # (RuntimeError: "Transport is closing")
            raise httpcore.WriteError(exc) from exc
    if sent < block.length:
        raise shorter(block.file)
    return True
