"""The daemon's I/O loop: worker threads upload and verify, the main thread decides.

The main thread loops: take a snapshot of the journal, ask the pure
:class:`~steadypost.daemon.schedule.Scheduler` what to start and when to
look again, start those jobs, then wait for a job to end, a signal, or that
time. Signal handlers only put a message in a queue (``queue.SimpleQueue``
is safe to use from a handler); the main thread acts on it:

* SIGTERM / SIGINT: start nothing new; cancel the running uploads (they stop
  at the next block or cut their backoff wait short, with their offset saved
  and their post released to ``waiting``, due at once); exit within a few
  seconds. A second signal stops waiting for them.
* SIGHUP: load the configuration again (endpoint, token, chunk size); running
  uploads finish with the settings they began with.

A post left ``uploading`` by a process that no longer exists (``kill -9``, a
crash, a power cut) is handed over at once by the journal instead of after
its lease expires (see :meth:`~steadypost.journal.Journal.claim`), so a
restarted daemon goes on from the last checkpoint right away.

Uploads start by a claim (:mod:`~steadypost.daemon.intake`), so any number
of daemons may drain one PostgreSQL journal; on SQLite one daemon runs per
journal (:mod:`~steadypost.daemon.lock`). Either way the daemon is a named
worker of the journal with a heartbeat (:mod:`~steadypost.daemon.heartbeat`);
uploads and checks run in threads (:mod:`~steadypost.daemon.jobs`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from steadypost.client import Uploader
from steadypost.daemon.heartbeat import (
    DEFAULT_HEARTBEAT_S,
    DEFAULT_LEASE_S,
    Membership,
    default_worker_name,
)
from steadypost.daemon.intake import Intake, window
from steadypost.daemon.jobs import Job, forwarded_signals
from steadypost.daemon.lock import DaemonLock
from steadypost.daemon.schedule import (
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_S,
    Plan,
    Scheduler,
    Snapshot,
)
from steadypost.daemon.sites import Site, SiteSettings, outcome_line
from steadypost.daemon.watch import DEFAULT_SETTLE_S, FolderWatcher, Sidecar, SidecarError, add_to
from steadypost.errors import SteadypostError
from steadypost.journal import Journal, describe_owner
from steadypost.journal.owners import owner_prefix
from steadypost.lifecycle.options import PostOptions
from steadypost.models import UPLOADABLE, Post, PostState

log = logging.getLogger("steadypost.daemon")

DEFAULT_STOP_GRACE_S = 4.0
KEEP_RESULTS = 1000


@dataclass(frozen=True)
class DaemonOptions:
    """How the daemon runs; every field has a default."""

    concurrency: int = DEFAULT_CONCURRENCY
    """Uploads at once (verifications run besides them, one at a time)."""
    poll_s: float = DEFAULT_POLL_S
    """Look at the journal (and the watch folders) at least this often."""
    watch: tuple[Path, ...] = ()
    settle_s: float = DEFAULT_SETTLE_S
    """A watched file is complete once unchanged for this long."""
    once: bool = False
    """Do what is due now, then return."""
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    handle_signals: bool = True
    """Install SIGTERM/SIGINT/SIGHUP handlers while running (main thread only)."""
    name: str | None = None
    """This worker's name on the journal (``steadypost status`` shows it); default ``host-pid``."""
    lease_s: float = DEFAULT_LEASE_S
    """How long a claimed post stays this daemon's without a heartbeat (then others take it)."""
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    """How often the daemon renews its leases and says it is alive (well inside ``lease_s``)."""


class Daemon:
    """Drains the journal: uploads due posts, verifies on time, posts watched files.

    ``settings`` is called at start and on SIGHUP (or :meth:`reload`).
    ``uploader_options`` go to every :class:`~steadypost.Uploader` (tests
    pass ``client``, ``sleep``, ``retry``...). ``clock`` gives UTC epoch
    seconds (a test passes a fake one). :meth:`run` works until :meth:`stop`
    or a signal (or, with ``once``, until nothing is due); :meth:`tick` is one
    round of it, for tests.
    """

    def __init__(
        self,
        journal: Journal,
        settings: Callable[[], SiteSettings] = Site,
        *,
        options: DaemonOptions | None = None,
        clock: Callable[[], float] = time.time,
        uploader_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.journal = journal
        self.options = options or DaemonOptions()
        self.clock = clock
        self.scheduler = Scheduler(concurrency=self.options.concurrency, poll_s=self.options.poll_s)
        self.results: dict[str, Post] = {}
        self.lock: DaemonLock | None = None
        self.name = self.options.name or default_worker_name()
        self.membership: Membership | None = None
        self._load = settings
        self._settings = settings()
        self._uploader_options = dict(uploader_options or {})
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._running: dict[str, Job] = {}
        self._stopping = False
        self._hurry = False
        self._warned: set[str] = set()
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._watcher = (FolderWatcher(self.options.watch, journal, settle_s=self.options.settle_s)
                         if self.options.watch else None)  # fmt: skip
        self._next_scan_at = 0.0
        self._scans = 0
        self._attempted: set[tuple[str, str]] = set()  # with ``once``: each at most once
        self._server_info: dict[str, Any] = {}
        self.intake = Intake(journal, lease_s=self.options.lease_s, warn_once=self._warn_once)

    # -- control (thread-safe) --

    def stop(self, reason: str = "asked to stop") -> None:
        """Start nothing new, cancel running uploads (checkpointed), and return from :meth:`run`."""
        self._inbox.put(("stop", reason))

    def reload(self) -> None:
        """Load the settings again before the next post starts."""
        self._inbox.put(("reload",))

    @property
    def running(self) -> list[Post]:
        """The posts being uploaded or checked right now."""
        return [job.post for job in self._running.values()]

    # -- the loop --

    def run(self) -> list[Post]:
        """Work until stopped (or until nothing is due, with ``once``); the posts worked on.

        Raises :class:`~steadypost.daemon.lock.DaemonRunningError` at once if
        another daemon runs on this SQLite journal, or a live worker of this
        name on this PostgreSQL one.
        """
        if not self.journal.shared:  # one daemon per SQLite journal; a fleet on PostgreSQL
            self.lock = DaemonLock(self.journal.path)
            self.lock.acquire(now=self.clock())
        try:
            self.membership = Membership(
                self.journal, name=self.name, process=owner_prefix(),
                lease_s=self.options.lease_s, heartbeat_s=self.options.heartbeat_s,
                leases=self._leases, info=self._info, clock=self.clock,
            )  # fmt: skip
            self.membership.join()
            with forwarded_signals(lambda signum: self._inbox.put(("signal", signum)),
                                   enabled=self.options.handle_signals):
                self._started()
                self._loop()
                self._shutdown()
        finally:
            if self.membership is not None:
                self.membership.leave()
            if self.lock is not None:
                self.lock.release()
        return list(self.results.values())

    def _free(self, kind: str) -> int:
        """How many more jobs of ``kind`` may start now."""
        if self._stopping:
            return 0
        limit = self.options.concurrency if kind == "upload" else self.scheduler.check_slots
        return max(0, limit - sum(job.kind == kind for job in self._running.values()))

    def _leases(self) -> list[tuple[str, str]]:
        return [(job.post.post_id, job.uploader.owner) for job in list(self._running.values())]

    def _info(self) -> dict[str, Any]:
        jobs = list(self._running.values())
        return {"concurrency": self.options.concurrency, "pid": os.getpid(),
                "uploading": [j.post.post_id for j in jobs if j.kind == "upload"],
                "checking": [j.post.post_id for j in jobs if j.kind == "check"],
                "last_error": self._last_error, "last_error_at": self._last_error_at,
                "stopping": self._stopping}  # fmt: skip

    def _started(self) -> None:
        watching = ", watching " + ", ".join(map(str, self.options.watch)) if self._watcher else ""
        log.info("steadypost daemon started (pid %d, worker %s): journal %s, %d upload(s) at "
                 "once%s%s", os.getpid(), self.name, self.journal.location,
                 self.options.concurrency, watching,
                 "; doing what is due now, then exiting" if self.options.once else "",
                 extra={"pid": os.getpid()})  # fmt: skip

    def _loop(self) -> None:
        while not self._stopping:
            try:
                plan = self.tick()
                self._last_error = None
            except (SteadypostError, OSError) as exc:  # e.g. the disk is full: try again later
                if self.options.once:
                    raise
                self._error(f"cannot go on just now: {exc}")
                plan = Plan(wake_at=self.clock() + self.options.poll_s)
            if self.options.once and plan.idle and not self._watch_pending():
                return
            self._receive(plan.wake_at)

    def tick(self) -> Plan:
        """One round: scan watch folders if due, start what is due, say when to look again."""
        now = self.clock()
        if self._watcher is not None and now >= self._next_scan_at and not self._stopping:
            self._scan(now)
        uploads: list[str] = []
        checks: list[str] = []
        seen: dict[str, Post] = {}
        for kind, state, slots in (("upload", UPLOADABLE, self._free("upload")),
                                   ("check", PostState.UNCONFIRMED, self._free("check"))):
            if not slots:
                continue  # every slot busy: what is due does not matter now
            passed = {p for k, p in self._attempted if k == kind} if self.options.once else set()
            passed |= self.intake.foreign | self.scheduler.held(kind, now)
            for post in self.journal.due(now=now, limit=window(slots, passed), state=state):
                if post.post_id in passed and post.post_id not in self.intake.foreign:
                    continue  # (with once: done in this run; its next try is the next run's)
                if not self.intake.is_foreign(post, self._settings):
                    seen[post.post_id] = post
                    (checks if kind == "check" else uploads).append(post.post_id)
        snap = Snapshot(
            now=now, due_uploads=uploads, due_checks=checks,
            next_due_at=self.journal.next_due_at(),
            running_uploads=frozenset(k for k, j in self._running.items() if j.kind == "upload"),
            running_checks=frozenset(k for k, j in self._running.items() if j.kind == "check"),
        )  # fmt: skip
        wake_by = self._next_scan_at if self._watcher is not None else None
        plan = self.scheduler.plan(snap, stopping=self._stopping, wake_by=wake_by)
        skip = set(self._running) | self.scheduler.held("upload", now)
        if self.options.once:
            skip |= {post_id for kind, post_id in self._attempted if kind == "upload"}
        started = []
        for post, owner in self.intake.claim(len(plan.uploads), skip=skip,
                                             settings=self._settings):  # fmt: skip
            before = seen.get(post.post_id)
            if before is not None and before.state is PostState.UPLOADING:
                self._taking_over(before)
            self._start("upload", post.post_id, post=post, owner=owner)
            started.append(post.post_id)
        skip = set(self._running) | self.scheduler.held("check", now)
        if self.options.once:
            skip |= {post_id for kind, post_id in self._attempted if kind == "check"}
        checking = []
        for post, owner in self.intake.claim(len(plan.checks), skip=skip,
                                             settings=self._settings, checks=True):  # fmt: skip
            self._start("check", post.post_id, post=post, owner=owner)
            checking.append(post.post_id)
        wake_at = plan.wake_at
        if len(started) < len(plan.uploads) or len(checking) < len(plan.checks):
            wake_at = max(wake_at, now + min(self.options.poll_s, 1.0))  # taken by others
        return replace(plan, uploads=tuple(started), checks=tuple(checking), wake_at=wake_at,
                       idle=not self._running)

    def wait_for_jobs(self, timeout: float = 30.0) -> None:
        """Handle messages until no job runs (for tests driving :meth:`tick`)."""
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            self._handle(self._inbox.get(timeout=max(0.0, deadline - time.monotonic())))

    def _receive(self, wake_at: float) -> None:
        timeout = min(max(0.0, wake_at - self.clock()), self.options.poll_s)
        try:
            message = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return
        self._handle(message)
        with contextlib.suppress(queue.Empty):
            while True:
                self._handle(self._inbox.get_nowait())

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "done":
            self._finish(message[1], message[2])
        elif kind == "reload" or (kind == "signal" and message[1] == signal.SIGHUP):
            self._reload()
        elif kind == "signal":
            self._begin_stop(signal.Signals(message[1]).name)
        elif kind == "stop":
            self._begin_stop(str(message[1]))

    # -- jobs --

    def _uploader(self, endpoint: str, owner: str | None = None) -> Uploader:
        options = {"clock": self.clock, "post_options": PostOptions(lease_s=self.options.lease_s),
                   **self._uploader_options}  # fmt: skip
        options.update(journal=self.journal, headers=self._settings.headers_for(endpoint))
        uploader = Uploader(**options)
        # What the tus servers advertised (OPTIONS) is known for the whole process: an
        # uploader per post must not ask again for every post.
        uploader._info_cache = self._server_info
        if owner is not None:
            uploader.owner = owner  # the claim's owner: the upload goes on under its lease
        return uploader

    def _start(self, kind: str, post_id: str, *, post: Post | None = None,
               owner: str | None = None) -> None:  # fmt: skip
        post = post or self.journal.get(post_id)
        job = Job(kind, post, self._uploader(post.endpoint, owner), self._settings.chunk_size)
        self._running[post_id] = job
        job.announce()
        job.start(self.journal, lambda job, result: self._inbox.put(("done", job, result)))

    def _finish(self, job: Job, result: Post | BaseException) -> None:
        post_id = job.post.post_id
        self._running.pop(post_id, None)
        self.scheduler.ended(post_id, self.clock(), job.kind)
        self._attempted.add((job.kind, post_id))
        name = os.path.basename(job.post.path)
        if isinstance(result, BaseException):
            self._error(f"{name} (post {post_id}): unexpected {type(result).__name__}: {result}")
            log.debug("the traceback:", exc_info=result)
            return
        self.results.pop(post_id, None)
        self.results[post_id] = result
        if len(self.results) > KEEP_RESULTS:  # a daemon runs for months: keep the latest
            del self.results[next(iter(self.results))]
        level, line = outcome_line(job.kind, result)
        if self._stopping and result.state is PostState.WAITING:
            level, line = logging.INFO, (f"{name} (post {post_id}) checkpointed at byte "
                                         f"{result.offset:,}; it goes on at the next start")
        log.log(level, line, extra={"post_id": post_id, "file": name, "state": result.state.value,
                                    "error": result.last_error})  # fmt: skip

    # -- watch folders --

    def _scan(self, now: float) -> None:
        assert self._watcher is not None
        self._scans += 1
        pause = self.options.settle_s if self.options.once else self.options.poll_s
        self._next_scan_at = now + pause
        for file in self._watcher.scan(now):
            if not self._settings.targets():
                self._warn_once("no endpoint", "watched files wait: no endpoint is configured")
                return
            joined: list[bool] = []
            try:
                posts = self._watcher.post(file, functools.partial(self._add, joined=joined))
            except SteadypostError as exc:
                self._error(f"cannot post {file.path}: {exc}")
                continue
            for post, was_there in zip(posts or (), joined, strict=False):
                to = f" to {post.platform}" if len(posts or ()) > 1 else ""
                what = (f"it already has post {post.post_id}{to} ({post.state.value}): joined, "
                        "not posted twice") if was_there else f"added as post {post.post_id}{to}"
                log.info("%s is complete (%s bytes): %s", file.path, f"{file.size:,}", what,
                         extra={"post_id": post.post_id, "file": file.path.name})  # fmt: skip

    def _add(self, path: Path, sidecar: Sidecar, joined: list[bool]) -> list[Post]:
        """Add (or join: one post per file and destination) the posts of a watched file."""
        try:
            targets = list(self._settings.targets(sidecar.platforms))
        except ValueError as exc:
            raise SidecarError(f"{path.name}: its sidecar's platforms: {exc}") from None
        fields = {"filename": path.name, **self._settings.metadata, **sidecar.metadata}
        with self._uploader("") as uploader:  # journals only: no request, no credentials
            results = add_to(uploader, path, targets, metadata=fields)
        joined.extend(added.joined for added in results)
        return [added.post for added in results]

    def _watch_pending(self) -> bool:
        """With ``once``: a watch folder still needs its second scan."""
        return self._watcher is not None and self._scans < 2

    # -- signals, reload, stop --

    def _reload(self) -> None:
        try:
            settings = self._load()
        except Exception as exc:
            log.error("configuration not reloaded (%s); keeping the previous one", exc)
            return
        self._settings = settings
        self.intake.forget_sites()
        log.info("configuration reloaded: endpoint %s, chunk size %s", settings.endpoint or "-",
                 settings.chunk_size or "default")  # fmt: skip

    def _begin_stop(self, reason: str) -> None:
        if self._stopping:
            self._hurry = True
            log.warning("%s again: exiting without waiting for the uploads", reason)
            return
        self._stopping = True
        busy = f"; checkpointing {len(self._running)} running job(s)" if self._running else ""
        log.info("%s: stopping%s", reason, busy)
        for job in self._running.values():
            job.uploader.cancel()

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.options.stop_grace_s
        while self._running and not self._hurry and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                self._handle(self._inbox.get(timeout=min(left, 0.25)))
        if self._running:
            names = ", ".join(os.path.basename(j.post.path) for j in self._running.values())
            log.warning("%s did not stop in time; the next start goes on from the last "
                        "checkpoint", names)  # fmt: skip
        log.info("stopped; every post is saved in the journal")

    def _taking_over(self, post: Post) -> None:
        key = f"taking over {post.post_id} from {post.lease_owner}"
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s: its uploader (%s) ended without a word; going on from byte %s",
                        os.path.basename(post.path), describe_owner(post.lease_owner),
                        f"{post.offset:,}", extra={"post_id": post.post_id})  # fmt: skip

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def _error(self, message: str) -> None:
        if message != self._last_error:
            log.error(message, extra={"error": message})
        self._last_error = message
        self._last_error_at = self.clock()
        if self.lock is not None:
            with contextlib.suppress(OSError):
                self.lock.note_error(message, self.clock())
