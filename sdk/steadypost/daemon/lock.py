"""One daemon per journal: an exclusive ``flock`` on a lock file beside the journal.

The lock file is ``<journal>.daemon.lock`` (e.g. ``journal.sqlite3.daemon.lock``),
private to the user (0600). While a daemon runs, it holds an exclusive
``fcntl.flock`` on it and keeps a small JSON object in it: its pid, host,
start time, and its last error (for ``steadypost status``).

The operating system releases a ``flock`` when its process ends, however it
ends (``kill -9``, a crash, a reboot), so a stale lock never blocks the next
start; the file itself is never deleted (deleting a locked file lets a second
daemon lock a new file of the same name).

Windows has no ``fcntl``: there the daemon refuses to start, saying so
(:class:`DaemonUnsupportedError`), and :func:`running_daemon` reports none,
while ``upload``, ``resume``, ``list`` and ``status`` work as everywhere
(Task Scheduler running ``steadypost resume --no-wait`` does the daemon's job).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steadypost.errors import SteadypostError

try:
    import fcntl
except ImportError:  # Windows: no flock; the daemon refuses to start (see the docstring)
    fcntl = None  # type: ignore[assignment]

WINDOWS_HINT = (
    "the steadypost daemon needs POSIX file locks (fcntl) to make sure only one runs per "
    "journal, and this system has none (Windows). Upload with `steadypost upload`, and let "
    "Task Scheduler run `steadypost resume --no-wait` and `steadypost verify` every few "
    "minutes instead"
)

LOCK_SUFFIX = ".daemon.lock"
_RETRY_S = 1.0
"""How long a start waits for a lock held briefly by ``steadypost status`` (not a daemon)."""


class DaemonUnsupportedError(SteadypostError):
    """The daemon cannot run on this system (no ``fcntl``: Windows)."""


class DaemonRunningError(SteadypostError):
    """Another daemon already works on this journal."""

    def __init__(self, message: str, info: LockInfo | None) -> None:
        super().__init__(message)
        self.info = info


@dataclass(frozen=True)
class LockInfo:
    """What a running daemon wrote into its lock file."""

    pid: int
    started_at: float
    host: str = ""
    journal: str = ""
    last_error: str | None = None
    last_error_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid, "started_at": self.started_at, "host": self.host,
            "journal": self.journal, "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }  # fmt: skip

    @classmethod
    def from_text(cls, text: str) -> LockInfo | None:
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]), started_at=float(data["started_at"]),
                host=str(data.get("host", "")), journal=str(data.get("journal", "")),
                last_error=data.get("last_error"), last_error_at=data.get("last_error_at"),
            )  # fmt: skip
        except (ValueError, TypeError, KeyError):
            return None


def lock_path_for(journal_path: str | os.PathLike[str]) -> Path:
    """The lock file of the journal at ``journal_path``."""
    path = Path(os.path.abspath(journal_path))
    return path.with_name(path.name + LOCK_SUFFIX)


def _open(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 65536).decode("utf-8", "replace")


def _describe(info: LockInfo | None, path: Path) -> str:
    if info is None:
        return f"another steadypost daemon is starting on this journal (lock {path})"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started_at))
    return (
        f"another steadypost daemon is already running on this journal: pid {info.pid}, "
        f"since {since} (lock {path}); stop it first (kill {info.pid}) or use another "
        "STEADYPOST_HOME"
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DaemonLock:
    """The exclusive lock of one journal's daemon; a context manager."""

    def __init__(self, journal_path: str | os.PathLike[str]) -> None:
        self.path = lock_path_for(journal_path)
        self.journal = str(Path(os.path.abspath(journal_path)))
        self._fd: int | None = None
        self.info: LockInfo | None = None

    def acquire(self, *, now: float) -> LockInfo:
        """Take the lock or raise :class:`DaemonRunningError` naming the running daemon.

        :class:`DaemonUnsupportedError` where there is no ``fcntl`` (Windows).
        """
        if fcntl is None:
            raise DaemonUnsupportedError(WINDOWS_HINT)
        fd = _open(self.path)
        deadline = time.monotonic() + _RETRY_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = LockInfo.from_text(_read(fd))
                # A live daemon's pid: refuse at once. No pid yet (a daemon starting, or
                # `steadypost status` peeking for an instant): look again for a moment.
                if (holder is not None and pid_alive(holder.pid)) or time.monotonic() > deadline:
                    os.close(fd)
                    raise DaemonRunningError(_describe(holder, self.path), holder) from None
                time.sleep(0.05)
        self._fd = fd
        import socket

        self.info = LockInfo(os.getpid(), now, socket.gethostname(), self.journal)
        self._write(self.info)
        return self.info

    def note_error(self, message: str, at: float) -> None:
        """Remember the daemon's last error in the lock file (``steadypost status`` shows it)."""
        if self._fd is None or self.info is None:
            return
        self.info = LockInfo(
            self.info.pid, self.info.started_at, self.info.host, self.info.journal, message, at
        )
        self._write(self.info)

    def _write(self, info: LockInfo) -> None:
        assert self._fd is not None
        data = json.dumps(info.to_json()).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Empty the lock file and let go of the lock; idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> DaemonLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_daemon(journal_path: str | os.PathLike[str]) -> LockInfo | None:
    """The daemon running on this journal (from its lock file), or ``None``.

    Peeks with a shared lock that is let go at once; a daemon that is just
    starting waits for it (see :meth:`DaemonLock.acquire`). A daemon whose
    lock file holds no information yet is reported with pid 0.
    """
    if fcntl is None:  # no daemon runs where it cannot lock (Windows)
        return None
    path = lock_path_for(journal_path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(20):  # the daemon may be rewriting it this very instant
                info = LockInfo.from_text(_read(fd))
                if info is not None:
                    return info
                time.sleep(0.01)
            return LockInfo(pid=0, started_at=0.0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
