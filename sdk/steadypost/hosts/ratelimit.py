"""Client-side rate limits that a platform documents (e.g. "6 requests per minute per token").

A flow asks for a slot with the :class:`~steadypost.flow.Acquire` effect; the
driver answers with the seconds to wait (``0.0``: the slot is taken now) from
a :class:`RateLimiter`. The decision itself is :func:`take_slot`, a pure
function over the times of the recent grants (a sliding window, the strictest
reading of "N per minute": it also keeps any fixed calendar-minute count at N).

Two limiters:

:class:`LocalRateLimiter`
    In memory, for one process (the default when a driver is given none).
:class:`SharedRateLimiter`
    Kept in the journal's per-host state, so the CLI and the daemon, each
    with its own process, count the same requests. The store only needs
    ``update_host_state(host, kind, fn)`` (see :class:`~steadypost.journal.Journal`),
    which runs ``fn`` in one transaction.

A platform may also *hold* a bucket until a time it announced (YouTube's daily
quota resets at midnight Pacific): ``Acquire(..., hold_until=t)`` keeps the hold
in the same state, and every later ``Acquire`` of that bucket, from any process
sharing the journal, waits for it without a request.

Bucket keys never contain a secret: platforms key them by a hash of the token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from steadypost.flow import Acquire

#: Added to every computed wait, so a slot is asked for again just after it frees
#: (clocks of client and platform never agree to the millisecond).
DEFAULT_MARGIN_S = 0.5


def take_slot(
    history: Sequence[float], *, now: float, limit: int, window_s: float,
    margin_s: float = DEFAULT_MARGIN_S,
) -> tuple[list[float], float]:  # fmt: skip
    """Decide one request against a sliding window.

    ``history`` holds the times of earlier grants. Returns the history to keep
    and the wait: ``0.0`` when a slot was taken at ``now`` (``now`` is then in
    the returned history), otherwise the seconds until one frees up.
    """
    if limit < 1 or window_s <= 0:
        raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
    recent = sorted(t for t in history if t > now - window_s)
    if len(recent) < limit:
        return [*recent, now], 0.0
    frees_at = recent[len(recent) - limit] + window_s
    return recent, max(frees_at - now, 0.0) + margin_s


#: The key of an account state's holds (bucket -> epoch seconds), beside the buckets' grants.
HOLDS_KEY = "_held_until"


def decide(
    state: Mapping[str, Any] | None, request: Acquire, *, margin_s: float = DEFAULT_MARGIN_S
) -> tuple[dict[str, Any], float]:
    """One :class:`~steadypost.flow.Acquire` against an account's state; the new state and wait.

    The state maps bucket names to the times of recent grants, and
    :data:`HOLDS_KEY` to the buckets the platform closed until a time (a
    quota's reset). A held bucket answers the seconds left of its hold;
    otherwise a ``limit`` of ``None`` grants at once, and any other limit is
    decided by :func:`take_slot`.
    """
    new = dict(state or {})
    raw = new.get(HOLDS_KEY)
    holds = {k: float(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    now, bucket = request.now, request.bucket
    until = holds.get(bucket, 0.0)
    if request.hold_until is not None:
        until = max(until, request.hold_until)
    if until > now:
        holds[bucket] = until
        new[HOLDS_KEY] = holds
        return new, until - now + margin_s
    holds.pop(bucket, None)
    if holds:
        new[HOLDS_KEY] = holds
    else:
        new.pop(HOLDS_KEY, None)
    if request.limit is None:
        return new, 0.0
    history = new.get(bucket)
    times = [float(t) for t in history] if isinstance(history, list) else []
    kept, wait = take_slot(
        times, now=now, limit=request.limit, window_s=request.window_s, margin_s=margin_s
    )
    new[bucket] = kept
    return new, wait


class RateLimiter(Protocol):
    """Answers an :class:`~steadypost.flow.Acquire`: seconds to wait, ``0.0`` if granted."""

    def acquire(self, request: Acquire) -> float: ...


class LocalRateLimiter:
    """Sliding-window limits kept in this process only (thread-safe)."""

    def __init__(self, *, margin_s: float = DEFAULT_MARGIN_S) -> None:
        self._margin_s = margin_s
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], dict[str, Any]] = {}

    def acquire(self, request: Acquire) -> float:
        key = (request.scope.lower(), request.key)
        with self._lock:
            self._states[key], wait = decide(
                self._states.get(key), request, margin_s=self._margin_s
            )
        return wait


class HostStateStore(Protocol):
    """What :class:`SharedRateLimiter` needs of the journal."""

    def update_host_state(
        self, host: str, kind: str, update: Callable[[dict[str, Any] | None], Mapping[str, Any]]
    ) -> dict[str, Any]: ...


class SharedRateLimiter:
    """Sliding-window limits kept in the journal's host state, shared by every process.

    ``store`` is called for the store on each request (the uploader opens its
    journal lazily). Each ``(scope, key)`` is one host-state row whose object
    maps bucket names to the times of recent grants.
    """

    def __init__(
        self, store: Callable[[], HostStateStore], *, margin_s: float = DEFAULT_MARGIN_S
    ) -> None:
        self._store = store
        self._margin_s = margin_s

    def acquire(self, request: Acquire) -> float:
        outcome: list[float] = []

        def update(state: dict[str, Any] | None) -> Mapping[str, Any]:
            new, wait = decide(state, request, margin_s=self._margin_s)
            outcome.append(wait)
            return new

        self._store().update_host_state(request.scope, request.key, update)
        return outcome[-1]
