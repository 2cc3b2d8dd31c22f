"""The daemons working on a journal, for ``steadypost status``: one row each, with a heartbeat.

A daemon registers when it starts (its name, host, pid and the owner-name
prefix of its leases), beats every few seconds, and marks itself stopped
when it exits. One killed with ``kill -9`` stays with an old heartbeat:
``steadypost status`` shows how long it has been silent, and its posts are
taken over when their leases expire (at once on its own host).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from steadypost.journal import codec
from steadypost.journal.posts import PostTable

_COLUMNS = "name, host, pid, process, started_at, heartbeat_at, lease_s, stopped_at, data"


@dataclass(frozen=True)
class Worker:
    """One daemon of the journal, as it last reported."""

    name: str
    host: str
    pid: int
    process: str
    """The start of its lease owner names (``host:pid:token``): its posts are those leased
    to an owner beginning with it."""
    started_at: float
    heartbeat_at: float
    lease_s: float
    stopped_at: float | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """What it says about itself: ``concurrency``, ``version``, ``last_error``..."""

    def silent_for(self, now: float) -> float:
        """Seconds since its last heartbeat."""
        return max(0.0, now - self.heartbeat_at)

    def alive(self, now: float) -> bool:
        """Not stopped, and heard from within its lease."""
        return self.stopped_at is None and self.silent_for(now) <= self.lease_s

    def owns(self, owner: str | None) -> bool:
        """Whether a lease owner name is one of this worker's."""
        return bool(owner) and str(owner).startswith(self.process + ".")


class WorkerTable:
    """Registration, heartbeats and the list of workers (see the module docstring)."""

    def __init__(self, posts: PostTable) -> None:
        self.posts = posts
        self.engine = posts.engine

    def register(self, name: str, *, process: str, lease_s: float,
                 data: Mapping[str, Any]) -> None:  # fmt: skip
        now = self.posts.clock()
        host, pid = process.split(":")[0], os.getpid()
        with self.engine.atomic():
            self.posts.lock_key(f"worker {name}")
            self.engine.run("DELETE FROM workers WHERE name = ?", (name,))
            self.engine.run(
                f"INSERT INTO workers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",  # noqa: S608
                (name, host, pid, process, now, now, float(lease_s), codec.dumps(data)),
            )

    def beat(self, name: str, data: Mapping[str, Any] | None) -> None:
        now = self.posts.clock()
        with self.engine.atomic():
            if data is None:
                self.engine.run("UPDATE workers SET heartbeat_at = ? WHERE name = ?", (now, name))
            else:
                self.engine.run("UPDATE workers SET heartbeat_at = ?, data = ? WHERE name = ?",
                                (now, codec.dumps(data), name))  # fmt: skip

    def stopped(self, name: str) -> None:
        with self.engine.atomic():
            now = self.posts.clock()
            self.engine.run("UPDATE workers SET stopped_at = ?, heartbeat_at = ? WHERE name = ?",
                            (now, now, name))  # fmt: skip

    def list(self, *, forget_after_s: float | None) -> builtins.list[Worker]:
        if forget_after_s is not None:
            cutoff = self.posts.clock() - forget_after_s
            with self.engine.atomic():
                self.engine.run("DELETE FROM workers WHERE heartbeat_at < ?", (cutoff,))
        rows = self.engine.rows(f"SELECT {_COLUMNS} FROM workers ORDER BY host, name")  # noqa: S608
        return [Worker(name=r[0], host=r[1], pid=int(r[2]), process=r[3], started_at=r[4],
                       heartbeat_at=r[5], lease_s=r[6], stopped_at=r[7],
                       data=codec.loads_frozen(r[8])) for r in rows]  # fmt: skip
