"""A tus server model whose every answer is drawn by hypothesis, and the oracle that judges it.

Used by ``test_tus_properties.py`` through :func:`steadypost.testing.pump`:
the flow under test runs against :class:`DrawnTus`, which answers each
request honestly or with one of many kinds of nonsense (error statuses,
malformed headers, answers that accept bytes without moving the offset, one
byte acknowledged, lies about the offset, lost answers, cut connections,
slow answers), and keeps the truth: what it stores, what it was ever offered.

The model only lies in ways a correct client *can* detect: it never claims
bytes it was not offered. Claiming bytes it was offered but dropped cannot
be told from the truth by any client, so that lie is not drawn.

Each answer gets a verdict for the invariant "no request without progress
unless a wait came first":

``progress``
    a step that settles something (a valid OPTIONS or creation answer), or an
    offset that moved at least ``threshold`` bytes past the last progress
    (or reached the end of the file);
``head``
    a valid HEAD answer without such progress: the one request after it
    (the PATCH it enables) may follow at once;
``bad``
    anything else: the next request must come after a wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hypothesis import strategies as st

from steadypost.errors import (
    ConnectFailedError,
    ConnectionLostError,
    ProtocolError,
    SteadypostError,
)
from steadypost.flow import FileBody, Request, Response
from steadypost.policy import header_int
from steadypost.testing import FakeClock

ORIGIN = "https://tus.test"
ENDPOINT = f"{ORIGIN}/files/"
#: Statuses a server may answer instead of doing the work.
ERROR_STATUSES = (400, 401, 403, 404, 408, 409, 410, 413, 423, 425, 429, 460, 500, 501, 502,
                  503, 504)  # fmt: skip
#: Values a number header may have when the server answers nonsense.
GARBAGE_NUMBERS = ("", " ", "²", "١٢", "-1", "+5", "1e3", "0x10", "12 34", "9" * 5000,
                   "3.0", "NaN", "\u00a012")  # fmt: skip
RETRY_AFTERS = (None, "0", "3", "120", "9" * 400, "-5", "soon", "²",
                "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT")  # fmt: skip
DELAYS = (0.0, 0.0, 0.0, 0.25, 5.0, 59.0)
NOT_PROCESSED = frozenset({408, 423, 425, 429, 503})

HONEST = "honest"
#: What a stubborn server keeps doing to PATCH requests.
PERSONAS = (None, None, "stall", "one-byte", "partial", "busy", "gone", "error")


def weighted(honest: int, *others: str) -> st.SearchStrategy[str]:
    """``honest`` shares of honesty among the other kinds of answer."""
    return st.sampled_from((HONEST,) * honest + others)


@dataclass
class Upload:
    length: int
    stored: bytearray = field(default_factory=bytearray)
    offered_to: int = 0
    """The furthest byte any request ever offered to this upload (sent or not)."""


@dataclass
class Verdict:
    method: str
    kind: str  # progress | head | bad


class DrawnTus:
    """The hostile server. ``draw`` is hypothesis's ``data.draw``."""

    def __init__(
        self, draw: Callable[[st.SearchStrategy[Any]], Any], clock: FakeClock, *,
        size: int, threshold: int, honest: int = 6, persona: str | None = None,
    ) -> None:  # fmt: skip
        self.draw = draw
        self.persona = persona
        """A misbehaviour this server mostly sticks to for PATCH (``stall``, ``one-byte``, ...)."""
        self.clock = clock
        self.size = size
        self.threshold = threshold
        self.honest = honest
        self.uploads: dict[str, Upload] = {}
        self.verdicts: list[Verdict] = []
        self.mark = 0
        """The offset at the last progress answer (the oracle's view of a retry cycle)."""
        self.created = 0

    # -- the answer ---------------------------------------------------------------

    def __call__(self, request: Request, body: bytes) -> Response:
        self.clock.advance(self.draw(st.sampled_from(DELAYS)))
        method = request.method
        wire = len(body) if isinstance(request.body, FileBody) else 0
        if wire:
            upload = self.uploads.get(urlsplit(request.url).path)
            if upload is not None:
                start = request.body.offset if isinstance(request.body, FileBody) else 0
                upload.offered_to = max(upload.offered_to, start + wire)
        failure = self.draw(weighted(self.honest * 3, "refused", "lost-before", "lost-after"))
        if failure == "refused":
            self.verdicts.append(Verdict(method, "bad"))
            raise ConnectFailedError(f"{method} {request.url}: refused (drawn)")
        if failure == "lost-before":
            self.verdicts.append(Verdict(method, "bad"))
            raise ConnectionLostError(f"{method} {request.url}: reset (drawn)")
        handler = {"OPTIONS": self._options, "POST": self._post, "HEAD": self._head,
                   "PATCH": self._patch}.get(method)  # fmt: skip
        if handler is None:
            response, kind = Response(405), "bad"
        else:
            response, kind = handler(request, body)
        self.verdicts.append(Verdict(method, kind))
        if failure == "lost-after":  # the server did the work; the answer never came
            self.verdicts[-1].kind = "bad"
            raise ConnectionLostError(f"{method} {request.url}: the answer was lost (drawn)")
        return response

    def _error(self) -> Response:
        status = self.draw(st.sampled_from(ERROR_STATUSES))
        headers = {"tus-resumable": "1.0.0"}
        retry_after = self.draw(st.sampled_from(RETRY_AFTERS))
        if retry_after is not None:
            headers["retry-after"] = retry_after
        content = self.draw(st.sampled_from((b"", b"<html><body>Bad gateway</body></html>",
                                             b'{"error": "busy"}', b"\xff\xfe")))  # fmt: skip
        return Response(status, headers, content)

    def _number(self, honest: int) -> str:
        if self.draw(st.booleans()):
            return str(honest)
        return str(self.draw(st.sampled_from(GARBAGE_NUMBERS)))

    # -- OPTIONS ------------------------------------------------------------------

    def _options(self, request: Request, body: bytes) -> tuple[Response, str]:
        kind = self.draw(weighted(self.honest, "error", "versions", "max-size", "empty"))
        if kind == "error":
            return self._error(), "bad"
        extensions = self.draw(st.sets(st.sampled_from(
            ("creation", "creation-with-upload", "termination", "checksum", "expiration"))))
        headers = {"tus-resumable": "1.0.0", "tus-version": "1.0.0",
                   "tus-extension": ",".join(sorted(extensions)),
                   "tus-checksum-algorithm": "sha1,md5"}  # fmt: skip
        verdict = "progress"
        if kind == "versions":
            headers["tus-version"] = self.draw(st.sampled_from(("0.2.2", "2.0.0,0.9", "", ",")))
            verdict = "bad" if headers["tus-version"].strip(", ") else "progress"
        elif kind == "max-size":
            headers["tus-max-size"] = self._number(self.size)
            try:  # advice: an unreadable value is ignored; one below the size ends the upload
                limit = header_int(headers["tus-max-size"], name="Tus-Max-Size", where="")
            except ProtocolError:
                limit = None
            if limit is not None and limit < self.size:
                verdict = "bad"
        elif kind == "empty":
            headers = {}
        return Response(204, headers), verdict

    # -- POST ---------------------------------------------------------------------

    def _post(self, request: Request, body: bytes) -> tuple[Response, str]:
        kind = self.draw(weighted(self.honest, "error", "no-location", "bad-location",
                                  "userinfo", "bad-offset"))  # fmt: skip
        if kind == "error":
            return self._error(), "bad"
        if kind == "no-location":
            return Response(201, {"tus-resumable": "1.0.0"}), "bad"
        if kind == "bad-location":
            where = self.draw(st.sampled_from(("javascript:alert(1)", "file:///etc/passwd",
                                               "http://h:99999/x", " ")))  # fmt: skip
            return Response(201, {"location": where}), "bad"
        self.created += 1
        path = f"/files/u{self.created}"
        upload = self.uploads[path] = Upload(int(request.header("upload-length") or -1))
        location = self.draw(st.sampled_from((path, ORIGIN + path, f"u{self.created}")))
        if kind == "userinfo":
            location = f"https://mallory:secret@tus.test{path}"
        headers = {"tus-resumable": "1.0.0", "location": location}
        verdict = "progress"
        if body:
            upload.offered_to = len(body)
            kept = self.draw(st.integers(0, len(body)))
            upload.stored += body[:kept]
            headers["upload-offset"] = str(kept)
            if kind == "bad-offset":
                headers["upload-offset"] = self._number(kept)
                verdict = "progress" if headers["upload-offset"] == str(kept) else "bad"
        self.mark = len(upload.stored)
        return Response(201, headers), verdict

    # -- HEAD ---------------------------------------------------------------------

    def _head(self, request: Request, body: bytes) -> tuple[Response, str]:
        upload = self.uploads.get(urlsplit(request.url).path)
        if upload is None:
            return Response(404), "bad"
        kind = self.draw(weighted(self.honest, "error", "gone", "bad-offset", "no-offset",
                                  "lie", "truncate", "bad-length"))  # fmt: skip
        if kind == "error":
            return self._error(), "bad"
        if kind == "gone":
            return Response(self.draw(st.sampled_from((404, 410)))), "bad"
        if kind == "truncate" and upload.stored:  # the server lost some bytes (honest about it)
            del upload.stored[self.draw(st.integers(0, len(upload.stored) - 1)):]
            self.mark = min(self.mark, len(upload.stored))
        offset = len(upload.stored)
        headers = {"tus-resumable": "1.0.0", "upload-offset": str(offset),
                   "upload-length": str(upload.length), "cache-control": "no-store"}  # fmt: skip
        verdict = "head"
        if kind == "bad-offset":
            headers["upload-offset"] = self._number(offset)
            if headers["upload-offset"] != str(offset):
                verdict = "bad"
        elif kind == "no-offset":
            del headers["upload-offset"]
            verdict = "bad"
        elif kind == "bad-length":  # (a blank Upload-Length is no Upload-Length)
            headers["upload-length"] = self._number(upload.length)
            if headers["upload-length"] not in (str(upload.length), "", " "):
                verdict = "bad"
        elif kind == "lie" and upload.offered_to < upload.length:
            # Claims bytes nobody ever offered it: a client must catch this one.
            headers["upload-offset"] = str(
                self.draw(st.integers(upload.offered_to + 1, upload.length))
            )
            verdict = "bad"
        if verdict == "head" and self._progressed(offset, upload):
            verdict = "progress"
        return Response(200, headers), verdict

    # -- PATCH --------------------------------------------------------------------

    def _patch(self, request: Request, body: bytes) -> tuple[Response, str]:
        upload = self.uploads.get(urlsplit(request.url).path)
        if upload is None:
            return Response(404), "bad"
        if self.persona is not None:
            kind = self.draw(st.sampled_from((self.persona,) * 8 + (HONEST, "error")))
        else:
            kind = self.draw(weighted(self.honest, "error", "gone", "stall", "partial",
                                      "one-byte", "bad-offset", "lie"))  # fmt: skip
        if kind == "error":
            return self._error(), "bad"
        if kind == "busy":
            return Response(503, {"retry-after": "0"}), "bad"
        if kind == "gone":
            return Response(self.draw(st.sampled_from((404, 410)))), "bad"
        start = request.header("upload-offset")
        if start != str(len(upload.stored)):
            return Response(409, {"tus-resumable": "1.0.0"}), "bad"
        kept = len(body)
        if kind == "stall":
            kept = 0
        elif kind == "partial" and body:
            kept = self.draw(st.integers(0, len(body)))
        elif kind == "one-byte":
            kept = min(1, len(body))
        upload.stored += body[:kept]
        offset = len(upload.stored)
        headers = {"tus-resumable": "1.0.0", "upload-offset": str(offset)}
        verdict = "progress" if self._progressed(offset, upload) else "bad"
        if kind == "bad-offset":
            headers["upload-offset"] = self._number(offset)
            if headers["upload-offset"] != str(offset):
                verdict = "bad"
        elif kind == "lie" and upload.offered_to < upload.length:
            headers["upload-offset"] = str(
                self.draw(st.integers(upload.offered_to + 1, upload.length))
            )
            verdict = "bad"
        return Response(204, headers), verdict

    def _progressed(self, offset: int, upload: Upload) -> bool:
        if offset >= upload.length or offset - self.mark >= self.threshold:
            self.mark = offset
            return True
        return False

    # -- the truth ----------------------------------------------------------------

    def stored(self, url: str) -> bytes | None:
        upload = self.uploads.get(urlsplit(url).path)
        return None if upload is None else bytes(upload.stored)


def counted_wire(response: Response | None, error: SteadypostError | None, length: int) -> int:
    """What an exchange's body counts against the wire bound, by the documented rule.

    Every body counts, except one whose connection failed before it left and
    one the server refused as busy (it said it did not act on it).
    """
    if isinstance(error, ConnectFailedError):
        return 0
    if response is not None and response.status in NOT_PROCESSED:
        return 0
    return length
