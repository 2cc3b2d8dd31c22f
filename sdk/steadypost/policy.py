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

from steadypost.errors import (
    ChecksumMismatchError,
    ConnectFailedError,
    ConnectionLostError,
    HostUnavailableError,
    Outcome,
    ProtocolError,
    RetriesExhaustedError,
    StalledError,
    StatusError,
    SteadypostError,
)

# --- what an HTTP status says: the one table of the project ---------------------------------

#: Statuses worth another attempt later (DESIGN.md "Behaviour users expect").
DEFAULT_RETRY_STATUSES = frozenset({408, 423, 425, 429, 500, 502, 503, 504})
#: Answers that say the server did not act on the request (it was busy or locked).
NOT_PROCESSED_STATUSES = frozenset({408, 423, 425, 429, 503})
#: Answers that say a host is in trouble (any other answer, even a 4xx, shows it works).
HOST_FAILURE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def outcome_for_status(status: int, *, read: bool = False) -> Outcome:
    """What an unexpected answer says about whether the server acted on the request.

    Busy or locked (:data:`NOT_PROCESSED_STATUSES`): it did not. Another 5xx:
    it may have (``AMBIGUOUS``). A 4xx: it refused (``REJECTED``). For a
    ``read`` (a check, a status query: it changes nothing) every unexpected
    answer is ``NOT_DELIVERED``: the question is simply asked again later.
    """
    if read or status in NOT_PROCESSED_STATUSES:
        return Outcome.NOT_DELIVERED
    if status >= 500:
        return Outcome.AMBIGUOUS
    return Outcome.REJECTED
DEFAULT_BASE_S = 1.0
DEFAULT_CAP_S = 300.0
DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_DEADLINE_S = 3600.0
DEFAULT_RETRY_AFTER_CAP_S = 3600.0
DEFAULT_CHECKSUM_RETRIES = 3
DEFAULT_MIN_WAIT_S = 0.5
DEFAULT_MAX_STALLS = 4
DEFAULT_WIRE_FACTOR = 2.0
#: Progress smaller than this (or the chunk, if smaller) does not start a new retry cycle.
REAL_PROGRESS_BYTES = 1024 * 1024
#: The most digits a number in a header may have (a byte count of 10**19 is nonsense).
MAX_HEADER_DIGITS = 19
#: A ``Retry-After`` beyond this is read as this (a policy caps it further).
MAX_RETRY_AFTER_S = 7 * 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How one upload retries. Every field has a named default.

    ``max_attempts`` bounds the attempts made *without progress*: the counter
    starts again whenever the server's offset advances, so a long upload over
    a flaky link is not abandoned for failures spread over hours.
    ``deadline_s`` bounds the whole foreground upload; when it (or
    ``max_attempts``) runs out, a journaled post is left ``waiting`` for the
    daemon rather than lost. ``None`` disables the deadline.

    Every failed attempt is followed by a wait of at least :attr:`floor_s`
    (``min_wait_s``, or ``base_s`` if that is smaller), whatever the server
    answered: an answer that does not move the upload forward (a ``204`` with
    the same offset, one byte acknowledged) is a failed attempt too, and
    ``max_stalls`` of those in a row end the upload with a
    :class:`~steadypost.errors.ProtocolError`. ``wire_factor`` bounds
    what one post may put on the wire over all its runs: ``wire_factor``
    times the file's size plus one chunk (``None``: no bound).
    """

    base_s: float = DEFAULT_BASE_S
    cap_s: float = DEFAULT_CAP_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    deadline_s: float | None = DEFAULT_DEADLINE_S
    retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S
    checksum_retries: int = DEFAULT_CHECKSUM_RETRIES
    retry_statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    min_wait_s: float = DEFAULT_MIN_WAIT_S
    max_stalls: int = DEFAULT_MAX_STALLS
    wire_factor: float | None = DEFAULT_WIRE_FACTOR

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("RetryPolicy needs 0 < base_s <= cap_s")
        if not self.min_wait_s >= 0:
            raise ValueError("RetryPolicy.min_wait_s must be >= 0")
        if self.max_stalls < 1:
            raise ValueError("RetryPolicy.max_stalls must be at least 1")
        if self.wire_factor is not None and not self.wire_factor >= 1:
            raise ValueError("RetryPolicy.wire_factor must be at least 1 (or None)")
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.checksum_retries < 0:
            raise ValueError("RetryPolicy.checksum_retries must be >= 0")

    @property
    def floor_s(self) -> float:
        """The shortest wait after any failed attempt."""
        return min(self.min_wait_s, self.base_s)


def full_jitter(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """A wait drawn uniformly from ``[0, min(cap, base * 2**(attempt-1))]``."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    # Avoid float overflow for very large attempt numbers.
    ceiling = cap_s if attempt > 62 else min(cap_s, base_s * 2.0 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)


def is_ascii_number(text: str) -> bool:
    """Whether ``text`` is 1 to :data:`MAX_HEADER_DIGITS` ASCII digits (``"²"`` is not)."""
    return 0 < len(text) <= MAX_HEADER_DIGITS and text.isascii() and text.isdigit()


def header_int(value: str | None, *, name: str, where: str) -> int:
    """The non-negative integer in header ``name``, or a :class:`ProtocolError` naming it.

    ASCII digits only, at most :data:`MAX_HEADER_DIGITS` of them: ``str.isdigit``
    alone accepts ``"²"`` and other Unicode digits, which ``int()`` then refuses,
    and a 5,000-digit value is nonsense, not a byte count. ``where`` names the
    request in the message (``"HEAD https://..."``).
    """
    if value is None:
        raise ProtocolError(f"{where}: the answer has no {name} header")
    text = value.strip(" \t")
    if not is_ascii_number(text):
        shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
        raise ProtocolError(f"{where}: {name} is not a number: {shown!r}")
    return int(text)


def parse_http_date(value: str | None) -> float | None:
    """An HTTP-date (``Wed, 21 Oct 2026 07:28:00 GMT``) as UTC epoch seconds, or ``None``."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
        return None if when.tzinfo is None else when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or ``None``.

    Accepts delta-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``), the latter relative to ``now``
    (UTC epoch seconds). Garbage gives ``None`` (the backoff applies instead:
    a wait still comes); a date in the past gives 0; anything longer than
    :data:`MAX_RETRY_AFTER_S` (400 nines, a date in the year 9999) is read as
    that, and a policy caps it further. Never raises.
    """
    if value is None:
        return None
    text = value.strip(" \t")
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return MAX_RETRY_AFTER_S if len(text) > 9 else min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def retry_wait(
    policy: RetryPolicy, attempt: int, *, retry_after: float | None, rng: random.Random
) -> float:
    """The wait before retry number ``attempt``: jittered backoff or ``Retry-After``.

    Never less than ``policy.floor_s``: whatever the server answered, no
    failed attempt is followed by another request at once.
    """
    wait = max(
        policy.floor_s, full_jitter(attempt, base_s=policy.base_s, cap_s=policy.cap_s, rng=rng)
    )
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
    if isinstance(exc, ConnectFailedError | ConnectionLostError | StalledError):
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


def retry_delay(
    exc: SteadypostError, attempts: int, *, policy: RetryPolicy, rng: random.Random
) -> float:
    """How long a post that failed without anything lost waits before its next attempt.

    The host's own time when its guard turned the request away (circuit open,
    budget spent, ``Retry-After``, status page); else the post's jittered
    backoff, or the server's longer ``Retry-After``.
    """
    if isinstance(exc, HostUnavailableError):
        return exc.retry_after
    cause = exc.__cause__ if isinstance(exc, RetriesExhaustedError) else exc
    retry_after = cause.retry_after if isinstance(cause, StatusError) else None
    return retry_wait(policy, attempts, retry_after=retry_after, rng=rng)


def recheck_delay(checks: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The gap before check number ``checks + 1`` of a post still processing (±10% jitter).

    ``base_s``, then twice as long each time, at most ``cap_s``.
    """
    base = min(cap_s, base_s * 2.0 ** min(checks - 1, 32))
    return base * rng.uniform(0.9, 1.1)
