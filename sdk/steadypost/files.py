"""Reading the video file: a checked snapshot, and hashing the parts an upload skips."""

from __future__ import annotations

import os
import stat

from .digest import RunningDigest
from .errors import FileProblemError
from .platforms.tus import LocalFile

_HASH_BLOCK = 1024 * 1024


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
    return LocalFile(os.path.abspath(text), st.st_size, st.st_mtime_ns)


def hash_prefix(path: str, length: int, digest: RunningDigest) -> None:
    """Feed the first ``length`` bytes of ``path`` to ``digest``.

    Used when resuming: the bytes the server already holds are not read by the
    upload, so they are hashed here (the only extra read of the file).
    """
    try:
        with open(path, "rb") as f:
            position = 0
            while position < length:
                block = f.read(min(_HASH_BLOCK, length - position))
                if not block:
                    raise FileProblemError(f"{path} became shorter than its upload")
                digest.feed(position, block)
                position += len(block)
    except OSError as exc:
        raise FileProblemError(f"{path}: cannot read the file ({exc.strerror})") from exc


def file_sha256(path: str, size: int) -> str | None:
    """The SHA-256 of the whole file (a full read; used only when the upload left a gap)."""
    digest = RunningDigest()
    hash_prefix(path, size, digest)
    return digest.hexdigest(size)
