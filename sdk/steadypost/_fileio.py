"""Reading the video file: opened once per run, and checked to be the file the post began with.

A run reads its file only through one :class:`OpenedFile`: the body of every
request and the SHA-256 come from the same descriptor, so a file replaced by
a rename during the upload cannot mix two versions (the old inode stays
open). The descriptor is checked with ``fstat`` against the journaled
:class:`~steadypost.models.FileIdentity` (size, mtime, device, inode and
status-change time) when it is opened, at every request body and once every
byte is up; a file that is gone, unreadable or changed is a
:class:`~steadypost.errors.FileProblemError`, never bytes from another version.
"""

from __future__ import annotations

import os
import threading

from .errors import FileProblemError
from .models import FileIdentity


def identity_of(st: os.stat_result) -> FileIdentity:
    """What a ``stat`` result says about a file (its SHA-256 is not known here)."""
    # On Windows st_ctime is the creation time, not the status-change time: not used there.
    ctime_ns = st.st_ctime_ns if os.name != "nt" else None
    return FileIdentity(
        st.st_size, st.st_mtime_ns, dev=st.st_dev, inode=st.st_ino, ctime_ns=ctime_ns
    )


def open_unchanged(path: str, expected: FileIdentity) -> int:
    """Open ``path`` read-only and return the descriptor, if it is still the same file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise FileProblemError(f"{path}: the file is gone") from exc
    except OSError as exc:
        raise FileProblemError(f"{path}: cannot read the file ({exc.strerror})") from exc
    try:
        ensure_unchanged(fd, path, expected, "since its upload began")
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_unchanged(fd: int, path: str, expected: FileIdentity, when: str) -> None:
    """Raise if the open file is no longer the one ``expected`` describes."""
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise FileProblemError(f"{path}: cannot read the file ({exc.strerror})") from exc
    change = expected.differs_from(identity_of(st))
    if change is not None:
        raise FileProblemError(
            f"{path} changed {when} ({change}); "
            "it will not be sent or resumed as the file the upload began with"
        )


class OpenedFile:
    """One video file, opened once for a run; every reader shares the descriptor.

    Readers (the request bodies, the hasher thread) use positional reads, so
    they never disturb each other. The descriptor is closed when the opener
    *and* every reader that :meth:`acquire`\\ d it have called :meth:`release`:
    a hasher thread still reading never finds it closed (or reused).
    """

    def __init__(self, path: str, expected: FileIdentity) -> None:
        self.path = path
        self.expected = expected
        self.fd = open_unchanged(path, expected)
        self._users = 1
        self._lock = threading.Lock()

    def acquire(self) -> OpenedFile:
        with self._lock:
            if self._users == 0:
                raise FileProblemError(f"{self.path}: the file was closed")
            self._users += 1
        return self

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            os.close(self.fd)

    def check(self, when: str = "while it was uploaded") -> None:
        """Raise :class:`FileProblemError` if the file changed (``fstat``)."""
        ensure_unchanged(self.fd, self.path, self.expected, when)

    def read(self, length: int, position: int) -> bytes:
        """Up to ``length`` bytes at ``position``; a short file is a :class:`FileProblemError`."""
        try:
            data = os.pread(self.fd, length, position)
        except OSError as exc:
            raise FileProblemError(f"{self.path}: cannot read the file ({exc.strerror})") from exc
        if not data and length:
            raise FileProblemError(f"{self.path} became shorter while it was being uploaded")
        return data

    def read_into(self, view: memoryview, position: int) -> int:
        """Fill ``view`` from ``position``; the bytes read (never 0 for a non-empty view)."""
        try:
            got = os.preadv(self.fd, [view], position)
        except OSError as exc:
            raise FileProblemError(f"{self.path}: cannot read the file ({exc.strerror})") from exc
        if got == 0 and len(view):
            raise FileProblemError(f"{self.path} became shorter while it was being uploaded")
        return got

    def __repr__(self) -> str:
        return f"OpenedFile({self.path!r}, fd={self.fd})"
