"""The daemon's decisions, as a pure class: what to start now, and when to look again.

Nothing here reads the journal, the clock or a file: the I/O loop
(:mod:`steadypost.daemon.runner`) hands in a :class:`Snapshot` of what is
due and what is running, with the time, and gets back a :class:`Plan`. So
the rules below are tested without sleeping or uploading anything:

* at most ``concurrency`` uploads at once, the most overdue post first;
* one verification at a time, besides the uploads (checks are a few small
  requests, and a long upload must not make one late);
* a post whose upload (or check) just ended is not uploaded (or checked)
  again for ``holdoff_s``: a post that cannot start never spins, while a
  post that a check sent back to ``queued`` is uploaded at once;
* the loop wakes at the next due time, or after ``poll_s`` at the latest
  (to notice posts added by ``steadypost add`` or a creator tool), or at
  an extra time the caller asks for (the next watch-folder scan);
* while stopping, nothing new starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_CONCURRENCY = 2
DEFAULT_POLL_S = 2.0
DEFAULT_HOLDOFF_S = 1.0


@dataclass(frozen=True)
class Snapshot:
    """What the journal says at ``now`` (UTC epoch seconds)."""

    now: float
    due_uploads: Sequence[str] = ()
    """Ids of posts to upload whose time has come, most overdue first."""
    due_checks: Sequence[str] = ()
    """Ids of ``unconfirmed`` posts whose verification time has come."""
    next_due_at: float | None = None
    """When the journal next has something due (may be past); ``None``: nothing."""
    running_uploads: frozenset[str] = frozenset()
    running_checks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    """What to do now, and when to look again."""

    uploads: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    wake_at: float = 0.0
    """Look again at this time at the latest (a finished job wakes the loop sooner)."""
    idle: bool = False
    """Nothing runs and nothing was started: ``--once`` may exit."""


@dataclass
class Scheduler:
    """Decides which posts start now; remembers only when each post's last run ended."""

    concurrency: int = DEFAULT_CONCURRENCY
    poll_s: float = DEFAULT_POLL_S
    holdoff_s: float = DEFAULT_HOLDOFF_S
    check_slots: int = 1
    _ended: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency!r}")
        if not self.poll_s > 0:
            raise ValueError(f"poll_s must be > 0 seconds, not {self.poll_s!r}")
        if self.holdoff_s < 0 or self.check_slots < 1:
            raise ValueError("holdoff_s must be >= 0 and check_slots >= 1")

    def ended(self, post_id: str, now: float, kind: str = "upload") -> None:
        """An upload (``kind="upload"``) or a check (``"check"``) of the post ended at ``now``."""
        self._ended[(kind, post_id)] = now

    def held(self, kind: str, now: float) -> set[str]:
        """The posts whose last ``kind`` run ended less than ``holdoff_s`` before ``now``."""
        return {p for (k, p), t in self._ended.items() if k == kind and now < t + self.holdoff_s}

    def _ready(self, kind: str, post_id: str, now: float) -> bool:
        ended = self._ended.get((kind, post_id))
        return ended is None or now >= ended + self.holdoff_s

    def plan(
        self, snap: Snapshot, *, stopping: bool = False, wake_by: float | None = None
    ) -> Plan:
        """What to start at ``snap.now``, and when to look again (``wake_by``: at the latest)."""
        now = snap.now
        self._ended = {k: t for k, t in self._ended.items() if now < t + self.holdoff_s}
        running = snap.running_uploads | snap.running_checks
        wakes = [now + self.poll_s]
        if wake_by is not None:
            wakes.append(wake_by)
        if snap.next_due_at is not None and snap.next_due_at > now:
            wakes.append(snap.next_due_at)
        held = [("upload", p) for p in snap.due_uploads] + [("check", p) for p in snap.due_checks]
        wakes += [self._ended[key] + self.holdoff_s for key in held if key in self._ended]
        wake_at = max(now, min(wakes))
        if stopping:
            return Plan(wake_at=wake_at, idle=not running)
        uploads = self._pick("upload", snap.due_uploads, running, now,
                             self.concurrency - len(snap.running_uploads))  # fmt: skip
        checks = self._pick("check", snap.due_checks, running | set(uploads), now,
                            self.check_slots - len(snap.running_checks))  # fmt: skip
        idle = not running and not uploads and not checks
        return Plan(uploads=uploads, checks=checks, wake_at=wake_at, idle=idle)

    def _pick(
        self, kind: str, due: Sequence[str], busy: frozenset[str] | set[str], now: float,
        slots: int,
    ) -> tuple[str, ...]:  # fmt: skip
        picked: list[str] = []
        for post_id in due:
            if len(picked) >= slots:
                break
            if post_id not in busy and post_id not in picked and self._ready(kind, post_id, now):
                picked.append(post_id)
        return tuple(picked)
