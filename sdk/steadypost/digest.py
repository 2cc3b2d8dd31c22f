"""The file's SHA-256, computed from the blocks the upload already reads.

Each block is hashed as it is read, on the uploading thread, before it is
handed to httpx: the file is read once, and while a block is hashed the
kernel's socket buffer keeps the server fed. Measured on a 2-core machine
with the server on the same host, this costs less CPU than handing blocks to
a helper thread (no hand-off, no GIL ping-pong, no blocks held in flight),
which leaves more of the machine to the server. ``hashlib`` releases the GIL
while it hashes a block, so other threads are not stalled either.
"""

from __future__ import annotations

import hashlib


class RunningDigest:
    """SHA-256 of a file built from the blocks an upload reads, in file order.

    Blocks re-sent after a retry are skipped (already hashed). A block that
    starts past the hashed position (a resume that skips bytes the server
    holds) leaves a gap: :meth:`hexdigest` is then ``None`` unless the caller
    feeds the missing prefix first.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.position = 0
        self.broken = False

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
        self._hash.update(data if offset == self.position else data[self.position - offset :])
        self.position = end

    def hexdigest(self, size: int) -> str | None:
        """The digest once exactly ``size`` bytes were fed in order, else ``None``."""
        if self.broken or self.position != size:
            return None
        return self._hash.hexdigest()
