"""The tus layer of :mod:`steadypost.testing.hostile`: an honest tus 1.0 core, and twists.

:class:`TusCore` is a minimal, honest tus 1.0.0 server (core protocol plus the
``creation``, ``creation-with-upload`` and ``termination`` extensions) that
keeps each upload's bytes in memory. It always gets the whole request body
before it answers. ``twist`` names a way to misbehave; :data:`BEHAVIOURS` lists
every named behaviour (a twist of the core plus a wire behaviour for some of
its answers) with what it does.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from steadypost.testing.hostile.wire import Answer, Cut, Drip, Garbage, Reset, Seen, Silent, Wire
from steadypost.testing.messages import TUS_VERSION

OFFSET_TYPE = "application/offset+octet-stream"
NINES_400 = "9" * 400
DIGITS_5000 = "9" * 5000
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Error response</title></head><body>"
    b"<h1>Error response</h1><p>Error code: 501</p><p>Unsupported method.</p></body></html>"
)
INDEX_PAGE = b"<!DOCTYPE html><html><head><title>My site</title></head><body>Hi!</body></html>"


@dataclass(frozen=True)
class Behaviour:
    """A named way for the hostile server to behave."""

    name: str
    description: str
    twist: str = "honest"
    """How :class:`TusCore` answers (see its ``patch`` / ``head`` / ``options``)."""
    wire: Wire | None = None
    """How the answers to ``wire_methods`` are sent (``None``: all at once)."""
    wire_methods: frozenset[str] = frozenset({"PATCH"})


def _b(name: str, description: str, twist: str = "", wire: Wire | None = None) -> Behaviour:
    return Behaviour(name, description, twist or name, wire)


#: Every named behaviour, in the order the hostile benchmark prints them.
BEHAVIOURS: dict[str, Behaviour] = {
    b.name: b
    for b in (
        _b("honest", "an honest tus 1.0 server (the baseline)"),
        _b("patch-same-offset", "every PATCH: 204 with the Upload-Offset it was sent at; "
           "the bytes are discarded"),
        _b("ack-one-byte", "every PATCH stores and acknowledges 1 byte"),
        _b("head-creeps", "every PATCH: 500, storing 1 byte (HEAD shows 1 more each time)"),
        _b("offset-unicode-digit", "Upload-Offset: ² on PATCH and HEAD (bytes stored)"),
        _b("offset-5000-digits", "Upload-Offset: 5,000 nines on PATCH and HEAD (bytes stored)"),
        _b("retry-after-nines", "every PATCH: 503 with Retry-After: 400 nines (bytes discarded)"),
        _b("drip", "the answer to every PATCH, 1 byte per second (bytes stored)", "honest",
           Drip(size=1, every_s=1.0)),
        _b("silent", "every PATCH is read and never answered (bytes stored)", "honest", Silent()),
        _b("cut-mid-answer", "every PATCH: the connection closes after 20 bytes of the answer "
           "(bytes stored)", "honest", Cut(after=20)),
        _b("reset", "every PATCH is read, then the connection is reset (bytes discarded)",
           "discard", Reset()),
        _b("garbage-status", "every PATCH: a status line with letters for digits (bytes stored)",
           "honest", Garbage()),
        _b("oversized-headers", "every PATCH: a 256 KiB header block (bytes stored)"),
        _b("html-not-tus", "a web server that is not tus: 501 HTML pages, 200 for GET/HEAD"),
        _b("location-userinfo", "Location: http://user:pass@127.0.0.1:PORT/files/ID "
           "(see HostileServer.leaked_authorization)"),
        _b("head-lies", "every PATCH: 500, bytes discarded; HEAD claims every byte arrived"),
        _b("no-offset", "every PATCH: 204 without Upload-Offset (bytes stored)"),
        _b("negative-offset", "every PATCH: 204 with Upload-Offset: -1 (bytes stored)"),
        _b("head-backwards", "every PATCH: 500 (bytes stored); each HEAD shows 1 byte less than "
           "the one before (and drops the bytes past it)"),
        _b("max-size-garbage", "OPTIONS: Tus-Max-Size: ² (otherwise honest)"),
    )
}


@dataclass
class TusUpload:
    """One upload's state on the server."""

    length: int
    data: bytearray = field(default_factory=bytearray)
    metadata: str = ""
    last_head: int | None = None
    """The offset the last HEAD reported (for ``head-backwards``)."""

    @property
    def offset(self) -> int:
        return len(self.data)


class TusCore:
    """An honest in-memory tus 1.0.0 server, bent by ``twist`` (a :class:`Behaviour`'s)."""

    def __init__(
        self,
        twist: str = "honest",
        *,
        base_url: Callable[[], str],
        max_size: int | None = None,
        extensions: tuple[str, ...] = ("creation", "creation-with-upload", "termination"),
    ) -> None:
        self.twist = twist
        self._base_url = base_url
        self.max_size = max_size
        self.extensions = extensions
        self.uploads: dict[str, TusUpload] = {}
        self.lock = threading.Lock()

    def __call__(self, seen: Seen, body: bytes) -> Answer:
        with self.lock:
            if self.twist == "html-not-tus":
                return self._html(seen)
            if seen.method == "OPTIONS":
                return self.options()
            if seen.header("tus-resumable") != TUS_VERSION:
                return self._answer(412, ("Tus-Version", TUS_VERSION))
            if seen.method == "POST" and seen.path.rstrip("/") == "/files":
                return self.post(seen, body)
            upload_id = seen.path.rsplit("/", 1)[-1]
            upload = self.uploads.get(upload_id) if seen.path.startswith("/files/") else None
            if upload is None:
                return self._answer(404)
            if seen.method == "HEAD":
                return self.head(upload)
            if seen.method == "PATCH":
                return self.patch(seen, upload, body)
            if seen.method == "DELETE":
                del self.uploads[upload_id]
                return self._answer(204)
            return self._answer(405)

    # ------------------------------------------------------------------ answers

    @staticmethod
    def _answer(status: int, *headers: tuple[str, str | bytes], body: bytes = b"") -> Answer:
        return Answer(status, (("Tus-Resumable", TUS_VERSION), *headers), body)

    def _offset(self, value: int) -> tuple[str, str]:
        if self.twist == "offset-unicode-digit":
            return ("Upload-Offset", "²")
        if self.twist == "offset-5000-digits":
            return ("Upload-Offset", DIGITS_5000)
        return ("Upload-Offset", str(value))

    def options(self) -> Answer:
        headers: list[tuple[str, str | bytes]] = [
            ("Tus-Version", TUS_VERSION), ("Tus-Extension", ",".join(self.extensions)),
        ]  # fmt: skip
        if self.twist == "max-size-garbage":
            headers.append(("Tus-Max-Size", "²"))
        elif self.max_size is not None:
            headers.append(("Tus-Max-Size", str(self.max_size)))
        return self._answer(204, *headers)

    def post(self, seen: Seen, body: bytes) -> Answer:
        length = seen.header("upload-length") or ""
        if not (length.isascii() and length.isdigit() and len(length) <= 18):
            return self._answer(400, body=b"Upload-Length is required")
        if self.max_size is not None and int(length) > self.max_size:
            return self._answer(413)
        upload_id = secrets.token_hex(8)
        upload = TusUpload(int(length), metadata=seen.header("upload-metadata") or "")
        if body and seen.header("content-type") == OFFSET_TYPE:
            upload.data += body[: upload.length]
        self.uploads[upload_id] = upload
        base = self._base_url()
        if self.twist == "location-userinfo":
            base = base.replace("http://", "http://user:pass@", 1)
        headers: list[tuple[str, str | bytes]] = [("Location", f"{base}/files/{upload_id}")]
        if body:
            headers.append(self._offset(upload.offset))
        return self._answer(201, *headers)

    def head(self, upload: TusUpload) -> Answer:
        offset = upload.offset
        if self.twist == "head-lies":
            offset = upload.length
        elif self.twist == "head-backwards":
            last = upload.offset if upload.last_head is None else upload.last_head
            del upload.data[max(0, min(upload.offset, last - 1)) :]
            offset = upload.last_head = upload.offset
        return self._answer(
            200, self._offset(offset), ("Upload-Length", str(upload.length)),
            ("Cache-Control", "no-store"),
        )  # fmt: skip

    def patch(self, seen: Seen, upload: TusUpload, body: bytes) -> Answer:
        if seen.header("content-type") != OFFSET_TYPE:
            return self._answer(415)
        sent = seen.header("upload-offset") or ""
        if not (sent.isascii() and sent.isdigit() and len(sent) <= 18):
            return self._answer(400, body=b"Upload-Offset is required")
        offset = int(sent)
        if offset != upload.offset:
            return self._answer(409, self._offset(upload.offset))
        if offset + len(body) > upload.length:
            return self._answer(400, body=b"the body goes past Upload-Length")
        twist = self.twist
        if twist in ("patch-same-offset", "discard"):
            return self._answer(204, ("Upload-Offset", str(offset)))
        if twist == "retry-after-nines":
            return self._answer(503, ("Retry-After", NINES_400))
        if twist == "head-lies":
            return self._answer(500, body=b"internal error")
        if twist in ("ack-one-byte", "head-creeps"):
            upload.data += body[:1]
            if twist == "head-creeps":
                return self._answer(500, body=b"internal error")
            return self._answer(204, self._offset(upload.offset))
        upload.data += body
        if twist == "head-backwards":
            return self._answer(500, body=b"internal error")
        if twist == "no-offset":
            return self._answer(204)
        if twist == "negative-offset":
            return self._answer(204, ("Upload-Offset", "-1"))
        if twist == "oversized-headers":
            return self._answer(204, self._offset(upload.offset), ("X-Pad", "a" * 256 * 1024))
        return self._answer(204, self._offset(upload.offset))

    def _html(self, seen: Seen) -> Answer:
        html = ("Content-Type", "text/html; charset=utf-8")
        if seen.method in ("GET", "HEAD"):
            return Answer(200, (html,), INDEX_PAGE)
        return Answer(501, (html,), HTML_PAGE)
