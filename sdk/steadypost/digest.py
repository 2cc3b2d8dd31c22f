"""The file's SHA-256, computed from the blocks the upload already reads.

Hashing runs on one helper thread (``hashlib`` releases the GIL on large
buffers), so it overlaps with sending instead of stalling the socket. Blocks
are hashed in order; a bounded number may be pending, so memory stays flat.
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

DEFAULT_MAX_PENDING = 8
#: Smaller files are hashed inline: a helper thread would cost more than it saves.
THREADED_FROM = 8 * 1024 * 1024


class RunningDigest:
    """SHA-256 of a file built from the blocks an upload reads, in file order.

    Blocks re-sent after a retry are skipped (already hashed). A block that
    starts past the hashed position (a resume that skips bytes the server
    holds) leaves a gap: :meth:`hexdigest` is then ``None`` unless the caller
    feeds the missing prefix first.
    """

    def __init__(self, *, threaded: bool = True, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._hash = hashlib.sha256()
        self.position = 0
        self.broken = False
        self._pool = ThreadPoolExecutor(1, "steadypost-sha256") if threaded else None
        self._pending: deque[Future[None]] = deque()
        self._max_pending = max_pending

    @classmethod
    def for_size(cls, size: int) -> RunningDigest:
        """A digest for a file of ``size`` bytes: hashed on a helper thread only when large."""
        return cls(threaded=size >= THREADED_FROM)

    def feed(self, offset: int, data: bytes) -> None:
        """Account for ``data`` read at ``offset``."""
        if self.broken:
            return
        end = offset + len(data)
        if end <= self.position:
            return
        if offset > self.position:
            self.broken = True
            return
        part = data if offset == self.position else data[self.position - offset :]
        self.position = end
        if self._pool is None:
            self._hash.update(part)
            return
        self._pending.append(self._pool.submit(self._hash.update, part))
        while len(self._pending) > self._max_pending:
            self._pending.popleft().result()

    def hexdigest(self, size: int) -> str | None:
        """The digest once exactly ``size`` bytes were fed in order, else ``None``."""
        self._drain()
        if self.broken or self.position != size:
            return None
        return self._hash.hexdigest()

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Stop the helper thread (pending blocks are still hashed)."""
        self._drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
