"""Background daemon mode: drain the journal, verify on time, survive restarts.

``steadypost daemon`` runs :class:`Daemon` (see ``steadypost daemon --help``);
a creator tool can run one in process too::

    from steadypost import Journal
    from steadypost.daemon import Daemon, DaemonOptions, Site

    with Journal() as journal:
        site = Site(endpoint="https://uploads.example.com/files/",
                    headers={"Authorization": "Bearer ..."})
        Daemon(journal, lambda: site, options=DaemonOptions(once=True)).run()

The parts, each readable on its own:

* :mod:`~steadypost.daemon.schedule`: the decisions (what starts now, when to
  wake), a pure class tested without sleeping;
* :mod:`~steadypost.daemon.runner`: the loop;
* :mod:`~steadypost.daemon.intake`: what is due, and claiming it (``SKIP LOCKED``
  on PostgreSQL, so a fleet of daemons shares one journal);
* :mod:`~steadypost.daemon.jobs`: an upload or a check in a worker thread; signals;
* :mod:`~steadypost.daemon.heartbeat`: the daemon as a named worker of the
  journal, whose heartbeat renews its leases;
* :mod:`~steadypost.daemon.sites`: site settings, log lines;
* :mod:`~steadypost.daemon.watch`: watch folders (complete files only, once each);
* :mod:`~steadypost.daemon.lock`: one daemon per SQLite journal (``flock``);
* :mod:`~steadypost.daemon.logs`: log lines for terminals, journald and JSON;
* :mod:`~steadypost.daemon.status`: what ``steadypost status`` reports (the workers too).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from steadypost.daemon.heartbeat import Membership
    from steadypost.daemon.lock import (
        DaemonLock,
        DaemonRunningError,
        DaemonUnsupportedError,
        LockInfo,
        lock_path_for,
        running_daemon,
    )
    from steadypost.daemon.logs import make_handler
    from steadypost.daemon.runner import Daemon, DaemonOptions
    from steadypost.daemon.schedule import Plan, Scheduler, Snapshot
    from steadypost.daemon.sites import Site, SiteSettings
    from steadypost.daemon.status import LastError, Status, WorkerStatus, read_status
    from steadypost.daemon.watch import (
        FolderWatcher,
        StabilityTracker,
        WatchedFile,
        ignored,
        read_sidecar,
    )

#: Where each name lives; imported on first use (PEP 562), so ``steadypost status``
#: (``read_status``) starts without the runner and the uploader it brings (httpx).
_LAZY = {
    "DaemonLock": "lock", "DaemonRunningError": "lock", "DaemonUnsupportedError": "lock",
    "LockInfo": "lock",
    "lock_path_for": "lock", "running_daemon": "lock", "make_handler": "logs",
    "Daemon": "runner", "DaemonOptions": "runner", "Plan": "schedule", "Scheduler": "schedule",
    "Snapshot": "schedule", "Site": "sites", "SiteSettings": "sites", "LastError": "status",
    "Status": "status", "read_status": "status", "FolderWatcher": "watch",
    "StabilityTracker": "watch", "WatchedFile": "watch", "ignored": "watch",
    "read_sidecar": "watch", "Membership": "heartbeat", "WorkerStatus": "status",
}  # fmt: skip


def __getattr__(name: str) -> _typing.Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'steadypost.daemon' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"steadypost.daemon.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Daemon",
    "DaemonLock",
    "DaemonOptions",
    "DaemonRunningError",
    "DaemonUnsupportedError",
    "FolderWatcher",
    "LastError",
    "LockInfo",
    "Membership",
    "Plan",
    "Scheduler",
    "Site",
    "SiteSettings",
    "Snapshot",
    "StabilityTracker",
    "Status",
    "WatchedFile",
    "WorkerStatus",
    "ignored",
    "lock_path_for",
    "make_handler",
    "read_sidecar",
    "read_status",
    "running_daemon",
]
