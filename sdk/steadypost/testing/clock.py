"""A fake clock that the simulator and your client share, so tests never sleep.

Pass ``clock.now`` as the client's clock and ``clock.sleep`` (or
``clock.asleep``) as its sleeper. A retry that would wait five minutes then
returns at once, the clock jumps five minutes ahead, and the wait is recorded
in :attr:`FakeClock.sleeps` for your assertions::

    clock = FakeClock()
    clock.sleep(30)
    assert clock.sleeps == [30] and clock.now() == FakeClock.DEFAULT_START + 30
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime

#: 2023-11-14T22:13:20Z: a fixed, round UTC epoch so test output is stable.
DEFAULT_START = 1_700_000_000.0


class FakeClock:
    """UTC epoch seconds that only move when a test (or a sleep) moves them.

    Thread-safe: the simulator's server threads read it while your test
    advances it. ``start`` is the epoch time the clock shows at first.
    """

    DEFAULT_START = DEFAULT_START

    def __init__(self, *, start: float = DEFAULT_START) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []
        self.sleeps: list[float] = []
        """Every duration passed to :meth:`sleep` / :meth:`asleep`, in order."""

    def now(self) -> float:
        """The current fake time, UTC epoch seconds (a drop-in for ``time.time``)."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (not backwards) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (advance({seconds!r}))")
        with self._lock:
            self._now += seconds
            now = self._now
            listeners = list(self._listeners)
        for listener in listeners:
            listener(now)
        return now

    def advance_to(self, when: float | datetime) -> float:
        """Move time forward to ``when`` (no-op if already later).

        ``when`` is epoch seconds, or an aware ``datetime`` such as a post's
        ``next_attempt_at``: a datetime holds whole microseconds, so the clock goes
        to the end of that microsecond, and a post due then is due.
        """
        target = when.timestamp() + 1e-6 if isinstance(when, datetime) else float(when)
        return self.advance(max(0.0, target - self.now()))

    def sleep(self, seconds: float) -> None:
        """A ``time.sleep`` that returns at once: records ``seconds``, then advances."""
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, not {seconds!r}")
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        """An ``asyncio.sleep`` that returns at once (after yielding to the loop once)."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def subscribe(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener(new_now)`` after every advance; returns an unsubscribe function.

        :class:`SimulatorServer` uses this to open or close its port the moment
        a test moves the clock into or out of a ``refuse`` outage.
        """
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
