"""The simulator's own small HTTP vocabulary, shared by both ways to run it.

The in-process httpx transport and the real socket server translate each
request into a :class:`RequestHead` plus body chunks, and translate what the
simulator decides back: a :class:`Reply` is an HTTP answer, a :class:`Drop` is
a connection that breaks without one (refused, reset, or never answered).
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

TUS_VERSION = "1.0.0"

#: What ``Respond(html=True)`` sends: a proxy's error page where JSON was expected.
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Something went wrong</h1><p>Please try again later.</p></body></html>"
)

_EXTRA_REASONS = {460: "Checksum Mismatch"}

DropKind = Literal["refuse", "reset", "timeout", "client_gone"]


def http_date(epoch: float) -> str:
    """Format UTC epoch seconds as an HTTP date (``Retry-After``, ``Upload-Expires``).

    Handy with the fake clock: ``retry_after=http_date(clock.now() + 120)``.
    """
    return email.utils.formatdate(epoch, usegmt=True)


def retry_after_value(retry_after: float | str) -> str:
    """The ``Retry-After`` header for seconds (rounded up) or a verbatim string."""
    if isinstance(retry_after, str):
        return retry_after
    return str(max(0, math.ceil(retry_after)))


def reason_phrase(status: int) -> str:
    """The standard reason phrase, including tus's 460 Checksum Mismatch."""
    if status in _EXTRA_REASONS:
        return _EXTRA_REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _lower_headers(pairs: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return MappingProxyType(merged)


@dataclass(frozen=True)
class RequestHead:
    """A request line and headers, before any body byte is read.

    ``headers`` has lower-case names; repeated headers are joined with ``", "``.
    ``origin`` is ``scheme://host[:port]`` as the client addressed it.
    """

    method: str
    path: str
    query: str
    origin: str
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(
        cls, *, method: str, target: str, origin: str, headers: Iterable[tuple[str, str]]
    ) -> RequestHead:
        """Build from a request target such as ``/files/abc?x=1``."""
        path, _, query = target.partition("?")
        lowered = _lower_headers(headers)
        override = lowered.get("x-http-method-override", "")
        verb = override.upper() if method.upper() == "POST" and override else method.upper()
        return cls(method=verb, path=path or "/", query=query, origin=origin, headers=lowered)

    def header(self, name: str) -> str | None:
        """A header's value, or ``None`` when absent (``name`` is case-insensitive)."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers (in order) and the whole body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of a header, or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def with_header(self, name: str, value: str | None) -> Reply:
        """A copy with ``name`` replaced by ``value`` (removed when ``value`` is None)."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        if value is not None:
            kept += ((name, value),)
        return Reply(self.status, kept, self.body)


@dataclass(frozen=True)
class Drop:
    """A connection that ends without an HTTP answer.

    ``refuse``: nothing listens (the in-process transport raises
    ``httpx.ConnectError``). ``reset``: the connection breaks mid-request
    (``httpx.ReadError``). ``timeout``: the server keeps quiet
    (``httpx.ReadTimeout``; the real server holds the socket up to ``hold_s``).
    ``client_gone``: the client itself stopped sending.
    """

    kind: DropKind
    hold_s: float = 0.0


#: What the simulator decides for one request.
Answer: TypeAlias = Reply | Drop


def json_reply(
    status: int, payload: Mapping[str, Any], *, headers: Iterable[tuple[str, str]] = ()
) -> Reply:
    """A JSON answer with ``Content-Type: application/json``."""
    body = json.dumps(dict(payload), separators=(",", ":")).encode()
    return Reply(status, (("Content-Type", "application/json"), *headers), body)


def error_reply(
    status: int, message: str = "", *, headers: Iterable[tuple[str, str]] = ()
) -> Reply:
    """A JSON error ``{"error": message}`` (the reason phrase when ``message`` is empty)."""
    return json_reply(status, {"error": message or reason_phrase(status)}, headers=headers)
