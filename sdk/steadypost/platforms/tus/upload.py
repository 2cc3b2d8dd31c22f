"""One tus upload as a flow: :class:`TusUpload` (the protocol's values are in :mod:`.protocol`).

``run()`` discovers the server (``OPTIONS``), creates the upload (``POST``),
then sends chunks (``PATCH``), asking the offset (``HEAD``) after any failure,
until the server holds every byte; see :mod:`.protocol` for how each failure
is handled, and the class for the promise it keeps whatever the server says.
"""

from __future__ import annotations

import base64
import logging
from functools import partial

from steadypost.errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ConnectFailedError,
    Outcome,
    ProtocolError,
    StalledError,
    StatusError,
    UploadGoneError,
    UploadStalledError,
)
from steadypost.flow import (
    Digest,
    Emit,
    FileBody,
    Flow,
    Misconfigured,
    NoProgress,
    Request,
    Response,
    RetryContext,
    WireMeter,
    wait_before_retry,
    with_retries,
)
from steadypost.flow.events import (
    OffsetAcknowledged,
    OffsetReported,
    PlatformAnswered,
    ServerDiscovered,
    UploadCreated,
    UploadExpiresChanged,
    UploadRestarted,
)
from steadypost.models import LocalFile, UploadResult
from steadypost.origins import origin_of
from steadypost.platforms.http import HeaderPolicy, request_id, resolve_url, status_error
from steadypost.platforms.tus.protocol import (
    MAX_CONFLICTS_PER_CHUNK,
    OFFSET_CONTENT_TYPE,
    TUS_VERSION,
    Sending,
    ServerInfo,
    TusOptions,
    check_offset,
    encode_metadata,
    not_tus_error,
    parse_expires,
    speaks_tus,
    where,
)
from steadypost.policy import NOT_PROCESSED_STATUSES, REAL_PROGRESS_BYTES, header_int

log = logging.getLogger("steadypost")


class TusUpload:
    """One upload of one file to one tus endpoint, as a flow.

    ``run()`` returns a generator; a driver pumps it. ``upload_url`` and
    ``known_offset`` (from the journal) resume an earlier upload: the offset is
    then asked of the server with HEAD, and a server offset lower than
    ``known_offset`` (bytes it had acknowledged) is a protocol error.

    The flow keeps one promise whatever the server answers: **no request
    without progress unless a wait came first.** Progress is real only when
    the server's offset moved by at least ``min(chunk, 1 MiB)`` since the
    current retry cycle began, or reached the end of the file; any other
    answer (an error, a ``204`` with the same offset, one byte acknowledged)
    is a failed attempt of the same cycle: a jittered wait of at least
    ``RetryPolicy.min_wait_s`` follows, the host's guard counts it, and the
    cycle's attempts run out. ``wire`` bounds the bytes the post sends over
    all its runs; ``sent_to`` is the furthest byte of ``upload_url`` any
    request carried (``None``: unknown, e.g. an upload begun by another
    client): a server claiming more than that is a :class:`ProtocolError`.

    ``answered=False`` says the endpoint's origin never answered like a tus
    server: its first failure (refused, a TLS mismatch, an answer without tus
    headers) is then a :class:`ConfigurationError`, not an outage to wait out.
    """

    def __init__(
        self,
        endpoint: str,
        file: LocalFile,
        options: TusOptions,
        retry: RetryContext,
        *,
        info: ServerInfo | None = None,
        upload_url: str | None = None,
        known_offset: int = 0,
        expires_at: float | None = None,
        sent_to: int | None = None,
        bytes_sent: int = 0,
        answered: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.answered = answered
        """Whether the endpoint's origin has answered like a tus server (see ``_exchange``)."""
        self.file = file
        self.options = options
        self.retry = retry
        self.info = info
        self.upload_url = upload_url
        self.acknowledged = known_offset if upload_url else 0
        self.sent_to: int | None = (
            max(sent_to, self.acknowledged) if upload_url and sent_to is not None
            else None if upload_url else 0
        )  # fmt: skip
        self.expires_at = expires_at
        self.auth = HeaderPolicy.for_endpoint(endpoint, options.headers, options.allowed_origins)
        self.wire = WireMeter.for_file(
            retry.policy, file.size, options.chunk_size, spent=bytes_sent
        )
        self.stalls = 0
        """Answers in a row that said yes without moving the upload forward."""

    # -- requests --

    def _headers(self, url: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return self.auth.for_url(url, ("Tus-Resumable", TUS_VERSION), *extra)

    def _body(self, url: str | None, offset: int, length: int) -> Flow[FileBody]:
        """The body of ``length`` bytes from ``offset``: counted and journaled before it goes."""
        body = FileBody(self.file, offset, length)
        what = f"sending bytes {offset}-{body.end - 1} of {self.file.path}"
        yield from self.wire.sending(url, body, what=what)
        if url is not None and self.sent_to is not None:
            self.sent_to = max(self.sent_to, body.end)
        return body

    def _exchange(self, request: Request) -> Flow[Response]:
        try:  # (a body that never took is not counted against the wire bound)
            response = yield from self.wire.exchange(request)
        except ConnectFailedError as exc:
            if not self.answered:
                error = ConfigurationError(
                    f"{exc}. Nothing at {origin_of(request.url)} has ever answered like a tus "
                    "server: is the endpoint right (scheme http/https, host, port)?"
                )
                yield Misconfigured(request.url, str(error))
                raise error from exc
            raise
        if speaks_tus(response):
            if not self.answered:
                self.answered = True
                yield Emit(PlatformAnswered(request.url))
        elif not self.answered and (
            response.status >= 300 and response.status not in NOT_PROCESSED_STATUSES
        ):
            yield from self._misconfigured(request, response)
        expires = parse_expires(response, now=self.retry.clock())
        if expires is not None and self.upload_url and expires != self.expires_at:
            self.expires_at = expires
            yield Emit(UploadExpiresChanged(self.upload_url, expires))
        return response

    def _misconfigured(self, request: Request, response: Response) -> Flow[None]:
        """Raise the :class:`ConfigurationError` for an answer that is not tus's."""
        error = not_tus_error(request, response)
        yield Misconfigured(request.url, str(error))
        raise error

    # -- protocol steps --

    def discover(self) -> Flow[ServerInfo]:
        """``OPTIONS``: the server's versions, extensions, size limit and checksums."""
        req = Request("OPTIONS", self.endpoint, self._headers(self.endpoint))
        resp = yield from self._exchange(req)
        if resp.status not in (200, 204):
            raise status_error(req, resp, what="discovery failed")

        def listed(name: str) -> tuple[str, ...]:
            raw = resp.header(name) or ""
            return tuple(part.strip() for part in raw.split(",") if part.strip())

        if not speaks_tus(resp):
            if not self.answered:
                yield from self._misconfigured(req, resp)
            raise ProtocolError(f"OPTIONS {self.endpoint} answered without any tus header")
        versions = listed("tus-version") or (TUS_VERSION,)
        if TUS_VERSION not in versions:
            raise ProtocolError(f"{self.endpoint} speaks tus {', '.join(versions)}, not 1.0.0")
        return ServerInfo(
            versions=versions,
            extensions=frozenset(listed("tus-extension")),
            max_size=_advisory_max_size(resp.header("tus-max-size"), where(req)),
            checksum_algorithms=frozenset(a.lower() for a in listed("tus-checksum-algorithm")),
        )

    def create(self, info: ServerInfo) -> Flow[tuple[str, int | None, int]]:
        """``POST``: a new upload resource.

        Returns its URL, the offset if data went along (``None``: ask with HEAD),
        and how many bytes the request carried.
        """
        size = self.file.size
        meta = {"filename": self.file.filename, "filetype": self.file.filetype}
        meta.update(self.options.metadata)
        extra = [("Upload-Length", str(size)), ("Upload-Metadata", encode_metadata(meta))]
        body = None
        # The first chunk may ride on the creation request (creation-with-upload).
        # It is kept small: if the answer is lost, its bytes are sent again.
        first = min(size, self.options.chunk_size, self.options.creation_with_upload_max)
        with_data = info.supports("creation-with-upload") and first > 0
        if with_data:
            body = yield from self._body(None, 0, first)
            extra.append(("Content-Type", OFFSET_CONTENT_TYPE))
        req = Request("POST", self.endpoint, self._headers(self.endpoint, *extra), body)
        resp = yield from self._exchange(req)
        if resp.status != 201:
            raise status_error(req, resp, what="creating the upload failed")
        location = resp.header("location")
        if not location or not location.strip():
            raise ProtocolError(f"POST {self.endpoint} answered 201 without a Location header")
        url = resolve_url(self.endpoint, location, what=f"POST {self.endpoint}: the Location")
        offset = None
        if with_data and resp.header("upload-offset") is not None:
            offset = header_int(resp.header("upload-offset"), name="Upload-Offset",
                                where=where(req))  # fmt: skip
            offset = self._check_offset(offset, req, sent_to=first)
        elif not with_data:
            offset = 0
        self.expires_at = parse_expires(resp, now=self.retry.clock())
        return url, offset, first if with_data else 0

    def head(self, url: str) -> Flow[int]:
        """``HEAD``: the server's offset for ``url``, checked against the file and the past."""
        req = Request("HEAD", url, self._headers(url, ("Cache-Control", "no-store")))
        resp = yield from self._exchange(req)
        if resp.status in (404, 410):
            raise UploadGoneError(f"the upload {url} is gone ({resp.status})")
        if resp.status not in (200, 204):
            raise status_error(
                req, resp, now=self.retry.clock(), what="asking for the offset failed"
            )
        length = resp.header("upload-length")
        if length is not None and length.strip():
            declared = header_int(length, name="Upload-Length", where=where(req))
            if declared != self.file.size:
                raise ProtocolError(
                    f"the upload {url} is for {declared} bytes but the file has "
                    f"{self.file.size}: it belongs to another file"
                )
        offset = header_int(resp.header("upload-offset"), name="Upload-Offset", where=where(req))
        offset = self._check_offset(offset, req, sent_to=self.sent_to)
        yield Emit(OffsetReported(url, offset, self.file.size))
        return offset

    def _check_offset(self, offset: int, req: Request, *, sent_to: int | None = None) -> int:
        return check_offset(offset, req, size=self.file.size, acknowledged=self.acknowledged,
                            sent_to=sent_to)  # fmt: skip

    def patch(self, url: str, offset: int, info: ServerInfo) -> Flow[int]:
        """``PATCH`` one chunk from ``offset``; returns the server's new offset."""
        length = min(self.options.chunk_size, self.file.size - offset)
        body = yield from self._body(url, offset, length)
        extra = [("Upload-Offset", str(offset)), ("Content-Type", OFFSET_CONTENT_TYPE)]
        algorithm = info.checksum_algorithm if self.options.checksum else None
        if algorithm is not None:
            raw: bytes = yield Digest(body, algorithm)
            extra.append(("Upload-Checksum", f"{algorithm} {base64.b64encode(raw).decode()}"))
        req = Request("PATCH", url, self._headers(url, *extra), body)
        resp = yield from self._exchange(req)
        if resp.status in (404, 410):
            raise UploadGoneError(f"the upload {url} is gone ({resp.status})")
        if resp.status == 460:
            raise ChecksumMismatchError(
                f"PATCH {url}: the server's {algorithm} of bytes "
                f"{offset}-{offset + length - 1} differs",
                status=460,
                method="PATCH",
                url=url,
                request_id=request_id(resp),
                outcome=Outcome.NOT_DELIVERED,
            )
        if resp.status not in (200, 204):
            raise status_error(req, resp, what="sending bytes failed")
        new = header_int(resp.header("upload-offset"), name="Upload-Offset", where=where(req))
        return self._check_offset(new, req, sent_to=offset + length)

    def terminate(self, url: str) -> Flow[None]:
        """``DELETE`` (termination extension): the server frees the upload."""
        req = Request("DELETE", url, self._headers(url))
        resp: Response = yield req
        if resp.status not in (200, 204, 404, 410):
            raise status_error(
                req, resp, now=self.retry.clock(), what="cancelling the upload failed"
            )

    # -- the whole upload --

    def run(self) -> Flow[UploadResult]:
        if self.info is None:
            self.info = yield from with_retries(self.discover, self.retry)
            yield Emit(ServerDiscovered(self.endpoint, self.info))
        info = self.info
        if info.max_size is not None and self.file.size > info.max_size:
            raise StatusError(
                f"{self.file.path} is {self.file.size} bytes; {self.endpoint} accepts at most "
                f"{info.max_size}",
                status=413,
            )
        restarts = 0
        while True:
            try:
                if self.upload_url and self._expired():
                    raise UploadGoneError(f"the upload {self.upload_url} expired")
                if self.upload_url is None:
                    yield from self._begin(info)
                    offset: int | None = self.acknowledged
                else:
                    offset = None  # ask the server
                yield from self._send_all(info, offset)
                assert self.upload_url is not None
                return UploadResult(
                    upload_url=self.upload_url,
                    size=self.file.size,
                    offset=self.acknowledged,
                )
            except UploadGoneError as exc:
                restarts += 1
                if restarts > self.options.max_restarts:
                    raise
                yield Emit(UploadRestarted(self.upload_url, str(exc)))
                self.upload_url, self.acknowledged, self.expires_at = None, 0, None
                self.sent_to = 0
                # Its answer said "gone": a failed attempt too, so a wait comes first.
                yield from wait_before_retry(
                    self.retry, restarts, "the upload is gone: starting a new one"
                )

    def _expired(self) -> bool:
        return self.expires_at is not None and self.retry.clock() >= self.expires_at

    def _begin(self, info: ServerInfo) -> Flow[None]:
        url, offset, carried = yield from with_retries(partial(self.create, info), self.retry)
        self.upload_url, self.sent_to = url, carried
        if offset is None:
            offset = yield from with_retries(lambda: self.head(url), self.retry)
        self.acknowledged = offset
        yield Emit(UploadCreated(url, self.expires_at, offset, sent_to=self.sent_to))
        yield Emit(OffsetAcknowledged(url, offset, self.file.size))

    def _real_progress(self) -> int:
        """How far the offset must move in one retry cycle to count as progress."""
        return max(1, min(self.options.chunk_size, REAL_PROGRESS_BYTES))

    def _send_all(self, info: ServerInfo, offset: int | None) -> Flow[None]:
        """PATCH chunks until the server holds every byte.

        One retry cycle lasts until the offset has moved by
        :meth:`_real_progress` (or reached the end): then the attempt counter
        starts again. Within a cycle every failed attempt is followed by a
        wait, including answers that say yes without moving the offset.
        """
        url = self.upload_url
        assert url is not None
        sending = Sending(offset)
        while self.acknowledged < self.file.size or sending.offset is None:
            if self._expired():
                raise UploadGoneError(f"the upload {url} expired")
            attempt = partial(self._advance, url, info, sending, self.acknowledged)
            yield from with_retries(
                attempt, self.retry, retry_if=partial(sending.retry_after, policy=self.retry.policy)
            )

    def _advance(self, url: str, info: ServerInfo, sending: Sending, mark: int) -> Flow[None]:
        """One attempt: move the server's offset by real progress from ``mark``, or fail."""
        if sending.offset is None:
            sending.offset = yield from self.head(url)
            yield from self._acknowledge(url, sending.offset)
            if self.acknowledged < self.file.size and (
                    self.acknowledged - mark < self._real_progress()):  # fmt: skip
                # The PATCH it enables goes at once, but the answer moved nothing: the host's
                # guard counts it, so "HEAD fine, PATCH fails" still opens the breaker.
                yield NoProgress(url, f"HEAD {url}: the server's offset has not moved")
        while self.acknowledged < self.file.size:
            if self.acknowledged - mark >= self._real_progress():
                return  # the HEAD showed real progress (bytes of a lost answer arrived)
            start = sending.offset
            try:
                sending.offset = yield from self.patch(url, start, info)
            except StatusError as exc:
                if exc.status == 409:
                    sending.conflicts += 1
                    if sending.conflicts > MAX_CONFLICTS_PER_CHUNK:
                        raise ProtocolError(
                            f"PATCH {url}: the server keeps answering 409 (offset conflict)"
                        ) from exc
                raise
            yield from self._acknowledge(url, sending.offset)
            if self.acknowledged >= self.file.size or self.acknowledged - mark >= (
                    self._real_progress()):  # fmt: skip
                self.stalls = 0
                sending.progressed()
                return
            self.stalls += 1
            moved = sending.offset - start
            why = "its offset did not move" if not moved else f"it took only {moved} byte(s)"
            yield NoProgress(url, f"PATCH {url} was answered yes, but {why}")
            if self.stalls >= self.retry.policy.max_stalls:
                raise UploadStalledError(
                    f"PATCH {url}: the server accepts bytes but its offset does not move "
                    f"({self.stalls} answers in a row; it holds {self.acknowledged:,} of "
                    f"{self.file.size:,} bytes)"
                )
            raise StalledError(f"the server took the bytes but {why}")

    def _acknowledge(self, url: str, offset: int) -> Flow[None]:
        if offset > self.acknowledged:
            self.acknowledged = offset
            yield Emit(OffsetAcknowledged(url, offset, self.file.size))


def _advisory_max_size(raw: str | None, where: str) -> int | None:
    """``Tus-Max-Size``, or ``None`` when absent or unreadable.

    Only advice: it lets a too-large file fail before any byte is sent. An
    unreadable value is logged and ignored (the creation's 413 still says
    no), rather than failing a post over a header nothing else depends on.
    """
    if raw is None or not raw.strip():
        return None
    try:
        return header_int(raw, name="Tus-Max-Size", where=where)
    except ProtocolError as exc:
        log.warning("%s; ignored", exc)
        return None
