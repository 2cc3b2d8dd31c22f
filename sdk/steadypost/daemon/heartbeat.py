"""The daemon as one named worker of its journal: registration, heartbeats, leaving.

Every daemon registers under a name (``--name``, default ``host-pid``) when it
starts. A thread then beats every ``heartbeat_s`` (10 s by default): one
transaction renews the leases of the posts it is uploading, for ``lease_s``
(30 s), and records that it is alive and what it is doing. So:

* a worker that dies on another machine, or is frozen, loses its posts when
  their leases expire, 30 s after its last heartbeat at most; a worker on the
  same machine loses them at once (:mod:`steadypost.journal.owners`);
* ``steadypost status`` lists the workers, their hosts, their last heartbeat
  and what each uploads (:mod:`steadypost.daemon.status`).

Two live daemons may not share a name: the second one refuses to start,
naming the first (a name whose process is gone, as after ``kill -9``, is free
at once on the same host, and once its lease has passed elsewhere).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from steadypost.daemon.lock import DaemonRunningError, pid_alive
from steadypost.errors import SteadypostError
from steadypost.journal import Journal, Worker
from steadypost.journal.owners import hostname

log = logging.getLogger("steadypost.daemon")

DEFAULT_LEASE_S = 30.0
DEFAULT_HEARTBEAT_S = 10.0
#: Workers silent for this long are dropped from the list at the next start.
FORGET_AFTER_S = 7 * 86400.0


def _gone(journal: Journal, worker: Worker, now: float) -> bool:
    if not worker.alive(now):
        return True
    if worker.host == hostname():
        return not pid_alive(worker.pid) or journal.owner_gone(worker.process + ".00000000")
    return False


class Membership:
    """Registers the daemon ``name``, beats in a thread, and leaves (see the module docstring).

    ``leases`` returns the ``(post_id, owner)`` of the uploads running now;
    ``info`` what the worker says about itself (shown by ``status``).
    """

    def __init__(
        self, journal: Journal, *, name: str, process: str, lease_s: float, heartbeat_s: float,
        leases: Callable[[], list[tuple[str, str]]], info: Callable[[], Mapping[str, Any]],
        clock: Callable[[], float],
    ) -> None:  # fmt: skip
        if not 0 < heartbeat_s < lease_s:
            raise ValueError(f"the heartbeat ({heartbeat_s} s) must come more often than the "
                             f"lease runs out ({lease_s} s)")  # fmt: skip
        self.journal, self.name, self.process = journal, name, process
        self.lease_s, self.heartbeat_s = lease_s, heartbeat_s
        self._leases, self._info, self._clock = leases, info, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: set[str] = set()
        """Posts whose lease the last heartbeat found held by someone else."""

    def join(self) -> None:
        """Register (refusing a name a live worker has) and start beating."""
        now = self._clock()
        for worker in self.journal.workers(forget_after_s=FORGET_AFTER_S):
            if worker.name == self.name and not _gone(self.journal, worker, now):
                raise DaemonRunningError(
                    f"a worker named {self.name!r} is already running on this journal: pid "
                    f"{worker.pid} on host {worker.host}, heard from "
                    f"{worker.silent_for(now):.0f} s ago; give this one another --name", None)
        self.journal.register_worker(self.name, process=self.process, lease_s=self.lease_s,
                                     data=self._info())  # fmt: skip
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"steadypost-heartbeat-{self.name}")  # fmt: skip
        self._thread.start()

    def beat(self) -> None:
        """Renew the running uploads' leases and say this worker is alive (one round)."""
        running = self._leases()
        if running:
            held = self.journal.renew_all(running, lease_s=self.lease_s)
            self.lost = {post_id for post_id, _ in running} - held
            for post_id in self.lost:
                log.debug("post %s: its lease is no longer this worker's", post_id)
        self.journal.worker_heartbeat(self.name, dict(self._info()))

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.beat()
            except (SteadypostError, OSError) as exc:  # the database is away: beat again later
                log.warning("heartbeat failed (%s); trying again in %g s", exc, self.heartbeat_s)

    def leave(self) -> None:
        """Stop beating and record that this worker stopped; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 5)
            self._thread = None
            with contextlib.suppress(SteadypostError):
                self.journal.worker_stopped(self.name)


def default_worker_name() -> str:
    """``host-pid``: unique among the live daemons of a journal."""
    return f"{hostname()}-{os.getpid()}"
