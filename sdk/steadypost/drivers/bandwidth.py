"""A cap on the upload speed of the whole process (``steadypost upload --bwlimit 2M``).

One token bucket for every upload of the process, whatever its host: a creator
on a shared home connection wants "use at most 2 MiB/s", not "2 MiB/s per
file". The driver asks it before each block of a request body
(:func:`throttle`); when the bucket is empty the block waits, so the bytes leave
at the rate on average, with bursts of at most :data:`BURST_S` seconds' worth.

The cap is off until :func:`set_limit` is called. It holds back the blocking
uploads (``Uploader``, the CLI, the daemon). Inside an asyncio event loop it
does not wait (a sleep there would stall every other task): an
``AsyncUploader`` is not capped.

A wait is cut into slices of at most :data:`SLICE_S`, and between slices the
upload's cancellation is checked, so Ctrl-C and ``Uploader.cancel()`` stop a
capped upload as promptly as a free one.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

#: Seconds of traffic the bucket can hold: the largest burst after an idle moment.
BURST_S = 0.5
#: The longest single sleep; cancellation is checked between them.
SLICE_S = 0.2


class Bandwidth:
    """A token bucket of ``rate`` bytes per second (``None``: no cap); thread-safe."""

    def __init__(self, rate: float | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self.rate: float | None = None
        self._tokens = 0.0
        self._at = clock()
        self.set_limit(rate)

    def set_limit(self, rate: float | None) -> None:
        """Cap at ``rate`` bytes/s from now on (``None`` or 0: no cap)."""
        if rate is not None and not rate > 0:
            rate = None
        with self._lock:
            self.rate = float(rate) if rate else None
            self._tokens = self._burst()
            self._at = self._clock()

    def _burst(self) -> float:
        return (self.rate or 0.0) * BURST_S

    def reserve(self, n: int) -> float:
        """Take ``n`` bytes' worth now; the seconds to wait before sending them."""
        with self._lock:
            if self.rate is None or n <= 0:
                return 0.0
            now = self._clock()
            self._tokens = min(self._burst(), self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self, n: int, check_cancelled: Callable[[], None] | None = None) -> float:
        """Wait until ``n`` more bytes may go; returns the seconds waited."""
        wait = self.reserve(n)
        if wait <= 0 or _in_event_loop():
            return 0.0
        left = wait
        while left > 0:
            if check_cancelled is not None:
                check_cancelled()
            step = min(SLICE_S, left)
            self._sleep(step)
            left -= step
        return wait


def _in_event_loop() -> bool:
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio.events._get_running_loop() is not None


PROCESS = Bandwidth()
"""The cap of this process, shared by every upload in it."""


def set_limit(rate: float | None) -> None:
    """Cap every blocking upload of the process at ``rate`` bytes/s (``None``: no cap)."""
    PROCESS.set_limit(rate)


def throttle(n: int, check_cancelled: Callable[[], None] | None = None) -> None:
    """Called by the driver before ``n`` body bytes go out (no-op without a cap)."""
    if PROCESS.rate is not None:
        PROCESS.take(n, check_cancelled)


__all__ = ["BURST_S", "PROCESS", "SLICE_S", "Bandwidth", "set_limit", "throttle"]
