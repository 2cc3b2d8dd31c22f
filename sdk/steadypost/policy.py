"""Retry decisions as pure functions: backoff, ``Retry-After``, what is retryable.

Nothing here touches the network, the clock or a random generator of its
own: the current time and the random source are parameters, so the same
decisions are exercised in tests in microseconds.

The wait before retry *n* (1-based) is::

    max(uniform(0, min(cap, base * 2 ** (n - 1))),   # full jitter
        min(Retry-After, retry_after_cap))             # when the server sent one

Full jitter (rather than "exponential plus a little jitter") spreads a fleet of
clients evenly over the whole window, which is what a recovering server needs.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass, field

from .errors import (
    ChecksumMismatchError,
    ConnectFailedError,
    ConnectionLostError,
    HostUnavailableError,
    StatusError,
    SteadypostError,
)

#: Statuses worth another attempt later (DESIGN.md "Behaviour users expect").
DEFAULT_RETRY_STATUSES = frozenset({408, 423, 425, 429, 500, 502, 503, 504})
DEFAULT_BASE_S = 1.0
DEFAULT_CAP_S = 300.0
DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_DEADLINE_S = 3600.0
DEFAULT_RETRY_AFTER_CAP_S = 3600.0
DEFAULT_CHECKSUM_RETRIES = 3


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How one upload retries. Every field has a named default.

    ``max_attempts`` bounds the attempts made *without progress*: the counter
    starts again whenever the server's offset advances, so a long upload over
    a flaky link is not abandoned for failures spread over hours.
    ``deadline_s`` bounds the whole foreground upload; when it (or
    ``max_attempts``) runs out, a journaled post is left ``waiting`` for the
    daemon rather than lost. ``None`` disables the deadline.
    """

    base_s: float = DEFAULT_BASE_S
    cap_s: float = DEFAULT_CAP_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    deadline_s: float | None = DEFAULT_DEADLINE_S
    retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S
    checksum_retries: int = DEFAULT_CHECKSUM_RETRIES
    retry_statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("RetryPolicy needs 0 < base_s <= cap_s")
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.checksum_retries < 0:
            raise ValueError("RetryPolicy.checksum_retries must be >= 0")


def full_jitter(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """A wait drawn uniformly from ``[0, min(cap, base * 2**(attempt-1))]``."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    # Avoid float overflow for very large attempt numbers.
    ceiling = cap_s if attempt > 62 else min(cap_s, base_s * 2.0 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or ``None``.

    Accepts delta-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``), the latter relative to ``now``
    (UTC epoch seconds). Garbage gives ``None``; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def retry_wait(
    policy: RetryPolicy, attempt: int, *, retry_after: float | None, rng: random.Random
) -> float:
    """The wait before retry number ``attempt``: jittered backoff or ``Retry-After``."""
    wait = full_jitter(attempt, base_s=policy.base_s, cap_s=policy.cap_s, rng=rng)
    if retry_after is not None:
        wait = max(wait, min(retry_after, policy.retry_after_cap_s))
    return wait


def is_retryable_status(policy: RetryPolicy, status: int) -> bool:
    return status in policy.retry_statuses


def is_transient(policy: RetryPolicy, exc: BaseException) -> bool:
    """Whether a failure of an *idempotent or re-synchronised* step may be retried.

    Connection failures and the retryable statuses qualify. A caller that is
    about to resend a non-idempotent write must look at ``exc.outcome`` first.
    A :class:`~steadypost.errors.HostUnavailableError` is not: the host's
    guard decides when it may be tried again, and the post waits until then.
    """
    if isinstance(exc, ChecksumMismatchError | HostUnavailableError):
        return False
    if isinstance(exc, ConnectFailedError | ConnectionLostError):
        return True
    if isinstance(exc, StatusError):
        return is_retryable_status(policy, exc.status)
    return False


def describe(exc: BaseException) -> str:
    """A short human reason for a failure, as shown next to a wait."""
    if isinstance(exc, StatusError):
        if exc.status == 503:
            return "server busy (503)"
        if exc.status == 429:
            return "rate limited (429)"
        if exc.status == 423:
            return "upload locked by the server (423)"
        return f"server answered {exc.status}"
    if isinstance(exc, ConnectFailedError):
        return "server unreachable"
    if isinstance(exc, ConnectionLostError):
        return "connection lost"
    if isinstance(exc, SteadypostError):
        return str(exc)
    return type(exc).__name__
