"""A tus 1.0.0 server core: pure protocol logic over an :class:`UploadStorage`.

Implements the core protocol (OPTIONS, HEAD, PATCH) and the creation,
creation-with-upload, termination, checksum and expiration extensions, each of
which :class:`TusConfig` can turn off to rehearse a more limited server.
Sockets, transports and faults live elsewhere; this module only answers
requests, so it is easy to read next to the spec (https://tus.io/protocols/resumable-upload).
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from steadypost.testing.apps.tus_sink import ChunkSink, Upload
from steadypost.testing.exchange import BodySink, Done, Fixed
from steadypost.testing.messages import TUS_VERSION, Reply, RequestHead, error_reply, http_date
from steadypost.testing.records import UploadInfo
from steadypost.testing.storage import UploadStorage


def parse_int(raw: str | None) -> int | None:
    """A non-negative decimal integer header, or ``None`` when absent or malformed."""
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


def parse_metadata(raw: str) -> Mapping[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value optional).

    Values are decoded as UTF-8 (undecodable bytes become U+FFFD); a key
    without a value maps to ``""``.
    """
    result: dict[str, str] = {}
    if not raw.strip():
        return MappingProxyType(result)
    for pair in raw.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise ValueError(f"malformed pair {pair.strip()!r}")
        key = parts[0]
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        try:
            value = base64.b64decode(parts[1], validate=True) if len(parts) == 2 else b""
        except binascii.Error as exc:
            raise ValueError(f"value of {key!r} is not base64") from exc
        result[key] = value.decode("utf-8", "replace")
    return MappingProxyType(result)


def parse_checksum(raw: str, allowed: Collection[str]) -> tuple[str, bytes]:
    """``Upload-Checksum: <algorithm> <base64 digest>`` -> ``(algorithm, digest)``."""
    parts = raw.strip().split(" ")
    if len(parts) != 2:
        raise ValueError("expected '<algorithm> <base64 digest>'")
    algorithm = parts[0].lower()
    if algorithm not in allowed:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    try:
        return algorithm, base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise ValueError("digest is not base64") from exc


#: Every extension the simulator implements, all on by default.
DEFAULT_EXTENSIONS = ("creation", "creation-with-upload", "termination", "checksum", "expiration")
DEFAULT_CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256")
#: ``Tus-Max-Size``: 4 GiB.
DEFAULT_MAX_SIZE = 4 << 30
#: Unfinished uploads expire a day after their last activity.
DEFAULT_EXPIRE_AFTER_S = 24 * 3600.0
FILES_PATH = "/files"
OCTET_STREAM = "application/offset+octet-stream"

LocationStyle = Literal["absolute", "relative", "other-origin"]


@dataclass(frozen=True)
class TusConfig:
    """How the simulated tus server presents itself (see ``PlatformSimulator``)."""

    extensions: Collection[str] = DEFAULT_EXTENSIONS
    checksum_algorithms: Collection[str] = DEFAULT_CHECKSUM_ALGORITHMS
    max_size: int | None = DEFAULT_MAX_SIZE
    expire_after_s: float = DEFAULT_EXPIRE_AFTER_S
    location: LocationStyle = "absolute"
    other_origin: str | None = None
    require_authorization: str | None = None

    def has(self, extension: str) -> bool:
        """Whether ``extension`` is switched on."""
        return extension in self.extensions


def other_origin_of(origin: str) -> str:
    """The same scheme and port on the "other" loopback name (127.0.0.1 <-> localhost)."""
    parts = urlsplit(origin)
    host = "localhost" if parts.hostname == "127.0.0.1" else "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class TusApp:
    """The tus endpoint at ``/files`` (uploads at ``/files/{id}``)."""

    def __init__(
        self,
        config: TusConfig,
        storage: UploadStorage,
        *,
        clock: Callable[[], float],
        lock: threading.RLock,
    ) -> None:
        self.config = config
        self.storage = storage
        self._clock = clock
        self._lock = lock
        self._uploads: dict[str, Upload] = {}

    # --- routing ---------------------------------------------------------------

    @staticmethod
    def handles(path: str) -> bool:
        """Whether ``path`` belongs to the tus endpoint."""
        return path == FILES_PATH or path.startswith(FILES_PATH + "/")

    def open(self, head: RequestHead) -> BodySink:
        """Start handling a tus request; the body (if any) is fed to the result."""
        if head.method == "OPTIONS":
            return Fixed(self._options())
        if head.header("tus-resumable") != TUS_VERSION:
            return Fixed(error_reply(412, "Tus-Resumable 1.0.0 required",
                                     headers=(("Tus-Version", TUS_VERSION),)))
        upload_id = head.path[len(FILES_PATH) + 1 :].strip("/")
        with self._lock:
            if not upload_id:
                if head.method == "POST":
                    return self._create(head)
                return Fixed(error_reply(405, headers=(("Allow", "OPTIONS, POST"),)))
            if head.method == "HEAD":
                return Fixed(self._head(upload_id))
            if head.method == "PATCH":
                return self._patch(head, upload_id)
            if head.method == "DELETE":
                return Fixed(self._delete(upload_id))
        return Fixed(error_reply(405, headers=(("Allow", "OPTIONS, HEAD, PATCH, DELETE"),)))

    def create_upload(self, length: int, metadata: Mapping[str, str], origin: str) -> str:
        """Make an upload server-side (as Vimeo's API does) and return its URL on ``origin``."""
        with self._lock:
            now = self._clock()
            upload_id = uuid.uuid4().hex
            self._uploads[upload_id] = Upload(upload_id, length, dict(metadata), None, now, now)
            self.storage.create(upload_id)
        return f"{origin.rstrip('/')}{FILES_PATH}/{upload_id}"

    # --- inspection --------------------------------------------------------------

    def infos(self) -> dict[str, UploadInfo]:
        """A snapshot of every upload, gone ones included."""
        with self._lock:
            now = self._clock()
            for upload in self._uploads.values():
                self._expire(upload, now)
            return {uid: self._info(up) for uid, up in self._uploads.items()}

    def completed_upload(self, upload_url: str) -> UploadInfo | None:
        """The finished, live upload that ``upload_url`` points to, or ``None``."""
        path = urlsplit(upload_url).path
        if not path.startswith(FILES_PATH + "/"):
            return None
        with self._lock:
            upload = self._uploads.get(path[len(FILES_PATH) + 1 :].strip("/"))
            if upload is None or upload.gone or not upload.completed:
                return None
            return self._info(upload)

    def read(self, upload_id: str) -> bytes:
        """The bytes stored for ``upload_id`` so far (empty once gone)."""
        return self.storage.read(upload_id)

    def _info(self, up: Upload) -> UploadInfo:
        return UploadInfo(
            upload_id=up.upload_id,
            length=up.length,
            offset=up.offset,
            sha256=self.storage.sha256(up.upload_id),
            metadata=up.metadata,
            completed=up.completed,
            created_at=up.created_at,
            touched_at=up.touched_at,
            expires_at=self._expires_at(up),
            gone=up.gone,
        )

    # --- OPTIONS -------------------------------------------------------------------

    def _options(self) -> Reply:
        cfg = self.config
        headers = [("Tus-Version", TUS_VERSION)]
        if cfg.extensions:
            headers.append(("Tus-Extension", ",".join(cfg.extensions)))
        if cfg.max_size is not None:
            headers.append(("Tus-Max-Size", str(cfg.max_size)))
        if cfg.has("checksum") and cfg.checksum_algorithms:
            headers.append(("Tus-Checksum-Algorithm", ",".join(cfg.checksum_algorithms)))
        return Reply(204, tuple(headers))

    # --- POST (creation, creation-with-upload) ---------------------------------------

    def _create(self, head: RequestHead) -> BodySink:
        cfg = self.config
        if not cfg.has("creation"):
            return Fixed(error_reply(405, "creation is not supported"))
        wanted = cfg.require_authorization
        if wanted is not None and head.header("authorization") != wanted:
            return Fixed(error_reply(401, "missing or wrong Authorization"))
        length = parse_int(head.header("upload-length"))
        if length is None:
            return Fixed(error_reply(400, "Upload-Length required (deferred length unsupported)"))
        if cfg.max_size is not None and length > cfg.max_size:
            return Fixed(error_reply(413, f"Upload-Length above Tus-Max-Size {cfg.max_size}"))
        try:
            metadata = parse_metadata(head.header("upload-metadata") or "")
        except ValueError as exc:
            return Fixed(error_reply(400, f"bad Upload-Metadata: {exc}"))
        with_body = _has_body(head) and cfg.has("creation-with-upload")
        checksum: tuple[str, bytes] | None = None
        if with_body:
            if head.header("content-type") != OCTET_STREAM:
                return Fixed(error_reply(415, f"Content-Type must be {OCTET_STREAM}"))
            problem, checksum = self._checksum(head)
            if problem:
                return Fixed(problem)
            if (parse_int(head.header("content-length")) or 0) > length:
                return Fixed(error_reply(413, "body goes beyond Upload-Length"))
        now = self._clock()
        upload_id = uuid.uuid4().hex
        upload = Upload(upload_id, length, metadata, head.header("upload-metadata"), now, now)
        self._uploads[upload_id] = upload
        self.storage.create(upload_id)
        created = (("Location", self._location(head, upload_id)),)
        if with_body:
            return self._sink(upload, checksum, created=created)
        return Fixed(Done(Reply(201, created + self._expires(upload)), step="create",
                          length=length, acknowledged=0))

    def _location(self, head: RequestHead, upload_id: str) -> str:
        path = f"{FILES_PATH}/{upload_id}"
        style = self.config.location
        if style == "relative":
            return path
        if style == "other-origin":
            return (self.config.other_origin or other_origin_of(head.origin)) + path
        return head.origin + path

    # --- HEAD ---------------------------------------------------------------------------

    def _head(self, upload_id: str) -> Done | Reply:
        upload = self._find(upload_id)
        if isinstance(upload, Reply):
            return upload
        headers = [
            ("Upload-Offset", str(upload.offset)),
            ("Upload-Length", str(upload.length)),
            ("Cache-Control", "no-store"),
        ]
        if upload.raw_metadata:
            headers.append(("Upload-Metadata", upload.raw_metadata))
        reply = Reply(200, (*headers, *self._expires(upload)))
        return Done(reply, length=upload.length, acknowledged=upload.offset)

    # --- PATCH --------------------------------------------------------------------------

    def _patch(self, head: RequestHead, upload_id: str) -> BodySink:
        if head.header("content-type") != OCTET_STREAM:
            return Fixed(error_reply(415, f"Content-Type must be {OCTET_STREAM}"))
        upload = self._find(upload_id)
        if isinstance(upload, Reply):
            return Fixed(upload)
        offset = parse_int(head.header("upload-offset"))
        if offset is None:
            return Fixed(error_reply(400, "Upload-Offset required"))
        if offset != upload.offset:
            return Fixed(error_reply(409, f"Upload-Offset is {upload.offset}, not {offset}",
                                     headers=(("Upload-Offset", str(upload.offset)),)))
        problem, checksum = self._checksum(head)
        if problem:
            return Fixed(problem)
        if upload.busy:
            return Fixed(error_reply(423, "another PATCH is writing to this upload"))
        content_length = parse_int(head.header("content-length"))
        if content_length is not None and offset + content_length > upload.length:
            return Fixed(error_reply(413, "body goes beyond Upload-Length"))
        return self._sink(upload, checksum, created=None)

    def _sink(
        self,
        upload: Upload,
        checksum: tuple[str, bytes] | None,
        *,
        created: tuple[tuple[str, str], ...] | None,
    ) -> ChunkSink:
        return ChunkSink(
            upload,
            self.storage,
            checksum=checksum,
            created=created,
            clock=self._clock,
            lock=self._lock,
            expires=self._expires,
        )

    def _checksum(self, head: RequestHead) -> tuple[Reply | None, tuple[str, bytes] | None]:
        raw = head.header("upload-checksum")
        if raw is None:
            return None, None
        allowed = self.config.checksum_algorithms if self.config.has("checksum") else ()
        try:
            return None, parse_checksum(raw, allowed)
        except ValueError as exc:
            return error_reply(400, f"bad Upload-Checksum: {exc}"), None

    # --- DELETE -------------------------------------------------------------------------

    def _delete(self, upload_id: str) -> Done | Reply:
        if not self.config.has("termination"):
            return error_reply(405, "termination is not supported")
        upload = self._find(upload_id)
        if isinstance(upload, Reply):
            return upload
        if upload.busy:
            return error_reply(423, "a PATCH is writing to this upload")
        upload.gone = "terminated"
        self.storage.discard(upload_id)
        return Done(Reply(204), step="delete")

    # --- lookup and expiration ---------------------------------------------------------

    def _find(self, upload_id: str) -> Upload | Reply:
        upload = self._uploads.get(upload_id)
        if upload is None:
            return error_reply(404, "no such upload")
        self._expire(upload, self._clock())
        if upload.gone == "expired":
            return error_reply(410, "the upload expired")
        if upload.gone:
            return error_reply(404, "the upload was terminated")
        return upload

    def _expires_at(self, upload: Upload) -> float | None:
        if not self.config.has("expiration") or upload.completed or upload.gone:
            return None
        return upload.touched_at + self.config.expire_after_s

    def _expire(self, upload: Upload, now: float) -> None:
        expires_at = self._expires_at(upload)
        if expires_at is not None and now >= expires_at and not upload.busy:
            upload.gone = "expired"
            self.storage.discard(upload.upload_id)

    def _expires(self, upload: Upload) -> tuple[tuple[str, str], ...]:
        expires_at = self._expires_at(upload)
        return () if expires_at is None else (("Upload-Expires", http_date(expires_at)),)


def _has_body(head: RequestHead) -> bool:
    if "chunked" in (head.header("transfer-encoding") or "").lower():
        return True
    return (parse_int(head.header("content-length")) or 0) > 0
