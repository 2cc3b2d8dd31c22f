"""The wire layer of :mod:`steadypost.testing.hostile`: answers and how they are sent.

An :class:`Answer` is what the server decided (status, headers, body). A *wire
behaviour* decides how those bytes reach the client, whatever the answer is:

============== ===============================================================
:class:`Sent`  all at once (an honest server)
:class:`Delay` after ``seconds`` of silence
:class:`Drip`  ``size`` bytes every ``every_s`` seconds (after the first ``after`` bytes)
:class:`Silent` never: the request was read, no answer comes, the connection stays
:class:`Cut`   the first ``after`` bytes, then the connection is closed (FIN)
:class:`Reset` nothing: the connection is reset (RST, ``SO_LINGER`` 0)
:class:`Garbage` ``data`` instead of the answer (a broken status line), then close
============== ===============================================================

Each ``send`` returns whether the connection may serve another request
(keep-alive). Every wait ends early when the server stops.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from steadypost.testing.messages import reason_phrase

__all__ = [
    "Answer",
    "Cut",
    "Delay",
    "Drip",
    "Garbage",
    "Reset",
    "Seen",
    "Sent",
    "Silent",
    "Wire",
]


@dataclass(frozen=True)
class Answer:
    """An HTTP/1.1 answer. ``Content-Length`` is added unless given (or the status is 1xx/204/304).

    Header values are ``str`` (sent as UTF-8, so ``"²"`` goes out as obs-text
    bytes) or ``bytes`` (sent verbatim).
    """

    status: int
    headers: tuple[tuple[str, str | bytes], ...] = ()
    body: bytes = b""
    reason: str | None = None

    def encode(self, *, head_only: bool = False) -> bytes:
        reason = self.reason if self.reason is not None else reason_phrase(self.status)
        lines = [f"HTTP/1.1 {self.status} {reason}".encode("latin-1")]
        names = {name.lower() for name, _ in self.headers}
        bodiless = self.status < 200 or self.status in (204, 304)
        headers = list(self.headers)
        if "content-length" not in names and not bodiless:
            headers.append(("Content-Length", str(len(self.body))))
        for name, value in headers:
            raw = value if isinstance(value, bytes) else value.encode("utf-8")
            lines.append(name.encode("latin-1") + b": " + raw)
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        return head if head_only or bodiless else head + self.body

    def header(self, name: str) -> str | bytes | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


@dataclass(frozen=True)
class Seen:
    """One request as the server received it. ``headers``: lower-cased names, last one wins."""

    method: str
    path: str
    headers: Mapping[str, str]
    body_bytes: int
    """Request body bytes read (all of them unless the client hung up first)."""
    at: float
    """``time.monotonic()`` when the request line arrived."""
    status: int | None = None
    """The answer's status (``None``: the request got no answer)."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Wire:
    """How an answer's bytes go out; the base class sends them all at once."""

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        sock.sendall(data)
        return True

    @property
    def answers(self) -> bool:
        """Whether the client gets an answer (for the request log's ``status``)."""
        return True


@dataclass(frozen=True)
class Sent(Wire):
    """An honest server: the whole answer at once."""


@dataclass(frozen=True)
class Delay(Wire):
    """Silence for ``seconds``, then the whole answer."""

    seconds: float = 5.0

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        if stop.wait(self.seconds):
            return False
        sock.sendall(data)
        return True


@dataclass(frozen=True)
class Drip(Wire):
    """The first ``after`` bytes at once, then ``size`` bytes every ``every_s`` seconds.

    ``after=0`` drips the status line and headers; ``after`` = the head's length
    drips only the body.
    """

    size: int = 1
    every_s: float = 1.0
    after: int = 0

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        if self.after:
            sock.sendall(data[: self.after])
        for start in range(self.after, len(data), max(1, self.size)):
            if stop.wait(self.every_s):
                return False
            sock.sendall(data[start : start + max(1, self.size)])
        return True


@dataclass(frozen=True)
class Silent(Wire):
    """The request was read; no answer ever comes. The connection stays open until the
    client hangs up (or the server stops)."""

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                if not sock.recv(65536):
                    return False
            except TimeoutError:
                continue
        return False

    @property
    def answers(self) -> bool:
        return False


@dataclass(frozen=True)
class Cut(Wire):
    """The first ``after`` bytes of the answer, then the connection closes (mid status
    line, mid headers or mid body, depending on ``after``)."""

    after: int = 20

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        sock.sendall(data[: self.after])
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return False


@dataclass(frozen=True)
class Reset(Wire):
    """No answer: the connection is reset (RST: ``SO_LINGER`` on, 0 s, then close)."""

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        reset(sock)
        return False

    @property
    def answers(self) -> bool:
        return False


@dataclass(frozen=True)
class Garbage(Wire):
    """``data`` instead of the answer (default: a status line with letters for digits)."""

    data: bytes = b"HTTP/1.1 2O4 No Content\r\nUpload-Offset: 0\r\n\r\n"

    def send(self, sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
        sock.sendall(self.data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return False


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
