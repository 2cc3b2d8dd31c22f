"""Reading the video file: a checked snapshot (hashing is in :mod:`steadypost.digest`)."""

from __future__ import annotations

import os
import stat

from ._fileio import identity_of
from .errors import FileProblemError
from .models import LocalFile


def local_file(path: str, st: os.stat_result) -> LocalFile:
    """The :class:`LocalFile` of ``path`` from its ``stat`` result (identity included)."""
    i = identity_of(st)
    return LocalFile(path, i.size, i.mtime_ns, dev=i.dev, inode=i.inode, ctime_ns=i.ctime_ns)


def snapshot_file(path: str | os.PathLike[str]) -> LocalFile:
    """``os.stat`` a file to upload, with a clear error for every bad case."""
    text = os.fspath(path)
    try:
        st = os.stat(text)
    except FileNotFoundError as exc:
        raise FileProblemError(f"{text}: no such file") from exc
    except OSError as exc:
        raise FileProblemError(f"{text}: cannot access the file ({exc.strerror})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise FileProblemError(f"{text} is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise FileProblemError(f"{text} is not a regular file")
    if not os.access(text, os.R_OK):
        raise FileProblemError(f"{text}: permission denied")
    return local_file(os.path.abspath(text), st)
