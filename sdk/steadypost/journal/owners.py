"""Lease owners, and telling at once whether the process behind one is gone.

A lease owner made by :func:`make_owner` reads ``host:pid:process.worker``
(``process`` is 16 hex digits drawn once per process, ``worker`` 8 per call).
Before a process takes its first lease on a journal, it creates and locks
(an exclusive ``flock``) its own lock file beside the journal, and keeps it
locked until it exits::

    journal.sqlite3.owners/<process>.lock

(A PostgreSQL journal has no file: its lock files are in a per-user local
directory named after the database, see :mod:`steadypost.journal.postgres`,
and only owners named after this host are looked up there. Owners on other
machines are taken over when their leases expire.)

The kernel lets go of a ``flock`` when the process ends, however it ends
(``kill -9``, a crash, a power cut), and never because a pid was reused. So
for an owner of that form:

* its lock file is there and nobody holds it: the process is **gone**, and
  its leases may be taken over at once (:func:`gone`);
* somebody holds it: the process is alive, also while it is stopped
  (``SIGSTOP``) or hung: its leases run until they expire;
* anything else is *unknown* and falls back to lease expiry: no lock file
  (e.g. the directory was not writable when the owner started), an owner
  name of another form (steadypost 0.1's ``host:pid:random``, or any name a
  caller chose), or an OS without ``flock`` (Windows).

Why a lock and not the pid plus the process's start time (``psutil``): a
pid says nothing across a reboot, nor across containers (pid namespaces),
and a start time read from two PID namespaces cannot be compared; the lock
is kept by the kernel on the file itself. Processes in containers that share
the journal's directory share one kernel (SQLite's WAL mode needs that:
it does not work over a network file system), so the lock tells the truth
there too, with no new dependency.

A lock file is created under a temporary name, locked, then renamed into
place, so no one ever sees an unlocked file of a live process. It is left
behind when its process exits (a daemon that exits with an upload still
running must leave a *gone* owner, not an unknown one); :func:`sweep`
deletes the files of gone processes once no lease names them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: owners are never known to be gone
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("steadypost")

OWNERS_SUFFIX = ".owners"
_OWNER = re.compile(r"^(?P<host>.*):(?P<pid>[0-9]{1,10}):(?P<process>[0-9a-f]{16})\.[0-9a-f]{8}$")
_OLD_OWNER = re.compile(r"^(?P<host>.*):(?P<pid>[0-9]{1,10}):[0-9a-f]{8}$")
_LOCK_NAME = re.compile(r"^[0-9a-f]{16}\.lock$")

_lock = threading.Lock()
_process: tuple[int, str] = (0, "")  # (pid, token): drawn again in a forked child
_held: dict[str, int] = {}  # owners directory -> descriptor of this process's locked file


def hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it."""
    if hasattr(os, "uname"):  # the same name on POSIX, without loading socket for `list`
        return os.uname().nodename
    import socket

    return socket.gethostname()


def _token() -> str:
    global _process
    pid = os.getpid()
    if _process[0] != pid:
        _process = (pid, os.urandom(8).hex())
    return _process[1]


def make_owner() -> str:
    """A lease owner name for a worker of this process: ``host:pid:process.worker``.

    Make one per worker (process, thread or task) and pass it to ``claim()``.
    A journal can tell at once when the process behind such a name is gone
    (see :mod:`steadypost.journal.owners`); any other string works as an
    owner too, and is then only ever taken over when its lease expires.
    """
    return f"{owner_prefix()}.{os.urandom(4).hex()}"


def owner_prefix() -> str:
    """How every owner name :func:`make_owner` makes in this process begins (``host:pid:token``)."""
    with _lock:
        token = _token()
    return f"{hostname()}:{os.getpid()}:{token}"


def owner_pid(owner: str | None) -> int | None:
    """The pid in an owner name made by steadypost (this one or 0.1's), else ``None``."""
    match = _OWNER.match(owner or "") or _OLD_OWNER.match(owner or "")
    return int(match["pid"]) if match else None


def describe_owner(owner: str | None) -> str:
    """``steadypost process 1234 on host laptop``, or the owner name as it is."""
    match = _OWNER.match(owner or "") or _OLD_OWNER.match(owner or "")
    if not match:
        return f"worker {owner!r}" if owner else "nobody"
    return f"steadypost process {match['pid']} on host {match['host'] or '?'}"


def owners_dir(journal_path: Path) -> Path:
    """Where the lock files of a journal's lease owners are: ``<journal>.owners/``."""
    return journal_path.with_name(journal_path.name + OWNERS_SUFFIX)


def _process_of(owner: str | None) -> str | None:
    match = _OWNER.match(owner or "")
    return match["process"] if match else None


def hold(journal_path: Path, owner: str) -> bool:
    """Make sure this process holds its lock file if ``owner`` is one of its names.

    Call it before a lease names ``owner``. Returns True the first time this
    process locks a file for this journal (a good moment for :func:`sweep`).
    Failing to create the file (a read-only directory) is not an error: the
    owner's leases then simply run until they expire.
    """
    process = _process_of(owner)
    if fcntl is None or process is None:
        return False
    directory = owners_dir(journal_path)
    with _lock:
        if process != _token() or str(directory) in _held:
            return False
        try:
            _held[str(directory)] = _create_locked(directory, process)
        except OSError as exc:
            log.debug("cannot create the lease owner lock in %s: %s", directory, exc)
            return False
    return True


def _create_locked(directory: Path, process: str) -> int:
    assert fcntl is not None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = directory / f".{process}.{os.urandom(4).hex()}.tmp"
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                 0o600)  # fmt: skip
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        about: dict[str, Any] = {"pid": os.getpid(), "host": hostname(),
                                 "started_at": time.time()}  # fmt: skip
        os.write(fd, json.dumps(about).encode())
        os.replace(temporary, directory / f"{process}.lock")  # appears already locked
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return fd


def gone(journal_path: Path, owner: str | None, *, host_only: bool = False) -> bool:
    """True only when ``owner``'s process is known to have ended (see the module docstring).

    With ``host_only`` (a journal shared by several machines, whose lock files
    are in a local directory), only owners named after this host are looked up.
    """
    process = _process_of(owner)
    if fcntl is None or process is None:
        return False
    if host_only and _OWNER.match(owner or "")["host"] != hostname():  # type: ignore[index]
        return False
    with _lock:
        if process == _token():
            return False  # this very process
    return _unlocked(owners_dir(journal_path) / f"{process}.lock", remove=False)


def _unlocked(path: Path, *, remove: bool) -> bool:
    """Whether nobody holds the lock of ``path`` (deleting it then, with ``remove``)."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # no such file (unknown), or not readable
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # held by its live process (or no flock here)
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return True
    finally:
        os.close(fd)


def sweep(journal_path: Path, in_use: set[str | None]) -> int:
    """Delete the lock files of gone processes that no lease in ``in_use`` names.

    ``in_use`` holds the lease owners of the journal's uploading posts.
    Returns how many files went.
    """
    if fcntl is None:
        return 0
    keep = {_process_of(owner) for owner in in_use}
    with _lock:
        keep.add(_token())
    directory = owners_dir(journal_path)
    try:
        names = [n for n in os.listdir(directory) if _LOCK_NAME.match(n)]
    except OSError:
        return 0
    return sum(
        _unlocked(directory / name, remove=True) for name in names if name[:16] not in keep
    )


def _forget_in_child() -> None:
    """In a forked child: its parent's lock files are not its own to hold."""
    global _process, _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    for fd in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)  # the parent's descriptor keeps the parent's lock
    _held.clear()
    _process = (0, "")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
