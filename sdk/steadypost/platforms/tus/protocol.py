"""The tus 1.0.0 protocol as flows (generators, no I/O).

Covers the core protocol (HEAD for the offset, PATCH with
``application/offset+octet-stream``) and the creation, creation-with-upload,
checksum, termination and expiration extensions.

How failures are handled (see DESIGN.md):

* a transient failure (connection trouble, 408/423/425/429/5xx) waits with
  full-jitter backoff (or the server's longer ``Retry-After``), then asks the
  server for its offset with HEAD and continues from there: bytes the server
  already holds are never sent again;
* 409 (offset mismatch): HEAD at once, then continue;
* 460 (checksum mismatch): resend that chunk, a bounded number of times;
* 404/410, or ``Upload-Expires`` passed: begin a new upload from byte 0;
* an offset beyond the file, going backwards, or a missing ``Upload-Offset``:
  :class:`~steadypost.errors.ProtocolError`; never a guess.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from steadypost.errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ProtocolError,
    StalledError,
    StatusError,
)
from steadypost.flow import Request, Response
from steadypost.origins import origin_of
from steadypost.policy import RetryPolicy, is_transient, parse_http_date

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024
DEFAULT_CREATION_WITH_UPLOAD_MAX = 64 * 1024
DEFAULT_MAX_RESTARTS = 3
MAX_CONFLICTS_PER_CHUNK = 3
#: Strongest first; the first one the server offers is used.
CHECKSUM_PREFERENCE = ("sha256", "sha1", "md5")


@dataclass(frozen=True)
class ServerInfo:
    """What an endpoint's ``OPTIONS`` answer advertised."""

    versions: tuple[str, ...] = (TUS_VERSION,)
    extensions: frozenset[str] = frozenset()
    max_size: int | None = None
    checksum_algorithms: frozenset[str] = frozenset()

    def supports(self, extension: str) -> bool:
        return extension in self.extensions

    @property
    def checksum_algorithm(self) -> str | None:
        """The strongest algorithm both sides know, or ``None``."""
        if not self.supports("checksum"):
            return None
        for name in CHECKSUM_PREFERENCE:
            if name in self.checksum_algorithms:
                return name
        return None


@dataclass(frozen=True, kw_only=True)
class TusOptions:
    """Options of one tus upload. Every field has a named default."""

    chunk_size: int = DEFAULT_CHUNK_SIZE
    """Bytes per PATCH. Memory use does not depend on it (bodies stream from disk)."""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Your own headers (e.g. ``Authorization``), sent only to trusted origins."""
    allowed_origins: frozenset[str] = frozenset()
    """Origins besides the endpoint's (``"https://cdn.example.com"``) that may get ``headers``."""
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """``Upload-Metadata`` pairs; ``filename`` and ``filetype`` are added unless given."""
    checksum: bool = True
    """Use the checksum extension when the server advertises it."""
    creation_with_upload_max: int = DEFAULT_CREATION_WITH_UPLOAD_MAX
    """At most this many bytes go in the creation request when the server allows it."""
    max_restarts: int = DEFAULT_MAX_RESTARTS
    """How many times a vanished or expired upload is begun again."""

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1 byte")
        for key in self.metadata:
            if not key or not key.isascii() or any(c in key for c in " ,") or not key.isprintable():
                raise ValueError(f"invalid Upload-Metadata key {key!r}: ASCII, no spaces or commas")


# --- helpers ------------------------------------------------------------------------


def encode_metadata(pairs: Mapping[str, str]) -> str:
    """``Upload-Metadata``: ``key base64(value)`` pairs joined by commas."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in pairs.items()
    )


def parse_expires(response: Response, *, now: float) -> float | None:
    """``Upload-Expires`` on the local clock (``now``), or ``None``.

    The server's own ``Date`` header, when present, gives the time left as the
    server counts it, so a client whose clock is off neither resumes into a
    dead upload nor abandons a live one.
    """
    expires = parse_http_date(response.header("upload-expires"))
    if expires is None:
        return None
    server_now = parse_http_date(response.header("date"))
    return expires if server_now is None else now + (expires - server_now)


def where(request: Request) -> str:
    return f"{request.method} {request.url}"


def speaks_tus(response: Response) -> bool:
    """Whether an answer carries tus's own headers (every tus server sends one of them)."""
    return any(response.header(name) is not None for name in ("tus-resumable", "tus-version"))


def not_tus_error(request: Request, response: Response) -> ConfigurationError:
    text = response.content[:500].decode("utf-8", "replace").lower()
    what = "an HTML page" if "<html" in text or "<!doctype" in text else "an answer"
    return ConfigurationError(
        f"{where(request)} answered {response.status} with {what} and no tus header: "
        f"{origin_of(request.url)} does not answer like a tus server: is the endpoint right "
        "(the upload path, e.g. .../files/)?"
    )


# --- the flow -----------------------------------------------------------------------


@dataclass
class Sending:
    """What ``_send_all`` knows between attempts (one retry cycle per real progress)."""

    offset: int | None
    """The server's offset as last answered; ``None``: ask it with HEAD first."""
    checksum_failures: int = 0
    conflicts: int = 0

    def progressed(self) -> None:
        self.checksum_failures = self.conflicts = 0

    def retry_after(self, exc: BaseException, *, policy: RetryPolicy) -> bool:
        """Whether a failed attempt is retried (after a wait), and how the next one starts.

        Transient failures and 409 (offset conflict) ask the server's offset
        with HEAD first; an answer that did not move the offset, or a checksum
        mismatch (a bounded number of times), resends from the offset known.
        """
        if isinstance(exc, ChecksumMismatchError):
            self.checksum_failures += 1
            return self.checksum_failures <= policy.checksum_retries
        if isinstance(exc, StalledError):
            return True
        if isinstance(exc, StatusError) and exc.status == 409:
            self.offset = None
            return True
        if is_transient(policy, exc):
            self.offset = None
            return True
        return False


def check_offset(
    offset: int, req: Request, *, size: int, acknowledged: int, sent_to: int | None
) -> int:
    """``offset`` if the server may have said it; else the :class:`ProtocolError` why not.

    Beyond the file, beyond what was ever sent to the upload (``sent_to``:
    ``None`` when unknown), or below what it acknowledged before: never a guess.
    """
    if offset > size:
        raise ProtocolError(
            f"{req.method} {req.url}: server offset {offset} is beyond the file size {size}"
        )
    if sent_to is not None and offset > sent_to:
        raise ProtocolError(
            f"{req.method} {req.url}: server claims offset {offset} "
            f"but only {sent_to} bytes were ever sent to it"
        )
    if offset < acknowledged:
        raise ProtocolError(
            f"{req.method} {req.url}: server offset went backwards from {acknowledged} to {offset}"
        )
    return offset
