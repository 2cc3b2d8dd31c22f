"""Opening the video file to read it, with the checks every reader makes.

The upload's body reader (:mod:`steadypost.transport`) and the file hasher
(:mod:`steadypost.digest`) both read the file the upload began with, by size
and mtime; a file that is gone, unreadable or changed is a
:class:`~steadypost.errors.FileProblemError`, never bytes from another version.
"""

from __future__ import annotations

import os

from .errors import FileProblemError


def open_unchanged(path: str, size: int, mtime_ns: int) -> int:
    """Open ``path`` read-only and return the descriptor, if it is still the same file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as exc:
        raise FileProblemError(f"{path}: the file is gone") from exc
    except OSError as exc:
        raise FileProblemError(f"{path}: cannot read the file ({exc.strerror})") from exc
    try:
        ensure_unchanged(fd, path, size, mtime_ns, "since its upload began")
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_unchanged(fd: int, path: str, size: int, mtime_ns: int, when: str) -> None:
    """Raise if the open file no longer has ``size`` bytes and ``mtime_ns``."""
    st = os.fstat(fd)
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        raise FileProblemError(
            f"{path} changed {when} (size {size} -> {st.st_size}); "
            "it will not be sent or resumed as the file the upload began with"
        )
