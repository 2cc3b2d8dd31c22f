"""One upload's server-side record, and the sink that appends a PATCH body to it.

Without ``Upload-Checksum`` every byte counts as soon as it is stored, so a
connection that breaks mid-chunk leaves the offset where the bytes stopped
(as tusd and @tus/server do). With a checksum the chunk counts only once the
digest matches; a mismatch or a broken connection discards it. A streamed
(chunked) body that runs past ``Upload-Length`` is stored up to the length and
answered ``400``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from steadypost.testing.exchange import Done
from steadypost.testing.messages import Reply, error_reply
from steadypost.testing.records import Gone
from steadypost.testing.storage import UploadStorage

Headers = tuple[tuple[str, str], ...]


@dataclass
class Upload:
    """The server's mutable record of one upload (snapshots are ``UploadInfo``)."""

    upload_id: str
    length: int
    metadata: Mapping[str, str]
    raw_metadata: str | None
    created_at: float
    touched_at: float
    offset: int = 0
    busy: bool = False
    gone: Gone | None = None

    @property
    def completed(self) -> bool:
        """Every byte is stored."""
        return self.offset == self.length


class ChunkSink:
    """Stores one PATCH (or creation-with-upload POST) body into an upload."""

    stores_body = True

    def __init__(
        self,
        upload: Upload,
        storage: UploadStorage,
        *,
        checksum: tuple[str, bytes] | None,
        created: Headers | None,
        clock: Callable[[], float],
        lock: threading.RLock,
        expires: Callable[[Upload], Headers],
    ) -> None:
        self._upload = upload
        self._storage = storage
        self._expected = checksum[1] if checksum else None
        self._hash = hashlib.new(checksum[0], usedforsecurity=False) if checksum else None
        self._created = created
        self._clock = clock
        self._lock = lock
        self._expires = expires
        self._start = upload.offset
        self._written = 0
        self._overflow = False
        upload.busy = True

    def write(self, data: bytes) -> None:
        with self._lock:
            room = self._upload.length - self._start - self._written
            if len(data) > room:
                self._overflow = True
                data = data[:room]
            if not data:
                return
            self._storage.append(self._upload.upload_id, data)
            self._written += len(data)
            if self._hash is not None:
                self._hash.update(data)
            else:
                self._upload.offset += len(data)
                self._upload.touched_at = self._clock()

    def finish(self) -> Done:
        with self._lock:
            upload = self._upload
            upload.busy = False
            upload.touched_at = self._clock()
            mismatch = self._hash is not None and self._hash.digest() != self._expected
            if mismatch:
                self._storage.truncate(upload.upload_id, self._start)
            elif self._hash is not None:
                upload.offset = self._start + self._written
            final = self._written > 0 and upload.completed
            step = "create" if self._created is not None else "patch"
            return Done(self._reply(mismatch), step=step, final=final,
                        length=upload.length, acknowledged=self._start)

    def _reply(self, mismatch: bool) -> Reply:
        offset = (("Upload-Offset", str(self._upload.offset)),)
        if self._created is not None:
            # creation-with-upload: the upload exists even if its first chunk failed.
            return Reply(201, self._created + offset + self._expires(self._upload))
        if mismatch:
            return error_reply(460, "Upload-Checksum does not match the chunk; it was discarded")
        if self._overflow:
            return error_reply(400, "body goes beyond Upload-Length", headers=offset)
        return Reply(204, offset + self._expires(self._upload))

    def abandon(self) -> None:
        with self._lock:
            self._upload.busy = False
            self._upload.touched_at = self._clock()
            if self._hash is not None:
                self._storage.truncate(self._upload.upload_id, self._start)
