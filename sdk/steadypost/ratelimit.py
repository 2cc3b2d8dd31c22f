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

Bucket keys never contain a secret: platforms key them by a hash of the token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .flow import Acquire

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


class RateLimiter(Protocol):
    """Answers an :class:`~steadypost.flow.Acquire`: seconds to wait, ``0.0`` if granted."""

    def acquire(self, request: Acquire) -> float: ...


class LocalRateLimiter:
    """Sliding-window limits kept in this process only (thread-safe)."""

    def __init__(self, *, margin_s: float = DEFAULT_MARGIN_S) -> None:
        self._margin_s = margin_s
        self._lock = threading.Lock()
        self._grants: dict[tuple[str, str, str], list[float]] = {}

    def acquire(self, request: Acquire) -> float:
        key = (request.scope.lower(), request.key, request.bucket)
        with self._lock:
            kept, wait = take_slot(
                self._grants.get(key, ()), now=request.now, limit=request.limit,
                window_s=request.window_s, margin_s=self._margin_s,
            )  # fmt: skip
            self._grants[key] = kept
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
            state = dict(state or {})
            raw = state.get(request.bucket)
            history = [float(t) for t in raw] if isinstance(raw, list) else []
            kept, wait = take_slot(
                history, now=request.now, limit=request.limit,
                window_s=request.window_s, margin_s=self._margin_s,
            )  # fmt: skip
            outcome.append(wait)
            state[request.bucket] = kept
            return state

        self._store().update_host_state(request.scope, request.key, update)
        return outcome[-1]
