"""Being a good citizen of a recovering server: a retry budget and a circuit breaker per host.

One upload's backoff is not enough. A daemon with 200 queued posts, or ten
thousand creators' apps, must not hit a struggling server 200 (or 10,000)
times per backoff period, and must not all come back in the same second when
it recovers. Every request of a process therefore goes through one
:class:`HostGuard` per host (keyed by origin, ``scheme://host:port``), which
holds:

* a **retry budget** (:class:`TokenBucket`), per process: every failed
  request costs tokens, every answer refunds a little, and while the bucket is
  at half or below the host gets nothing but the breaker's probes;
* a **circuit breaker** (:class:`CircuitBreaker`): after
  ``failure_threshold`` consecutive failures it *opens* for a jittered period
  that grows with every failed probe (30 s, 1 min, ... up to 4 min); then it is
  *half-open* and lets exactly one probe request through: an answer closes it,
  a failure opens it again for longer. Its state lives in the journal's host
  table when there is one, so the daemon and the CLI agree;
* the server's ``Retry-After``, on any error answer, pushes back the whole
  host's next attempt, not only that request's.

A refused request is never sent: the driver throws
:class:`~steadypost.errors.HostUnavailableError` (``NOT_DELIVERED``, with
``retry_after``) into the flow, which does not retry it itself; a journaled
post goes back to ``waiting`` with ``next_attempt_at`` = the host's next time.

Defaults, and why
-----------------
The budget has the shape of gRPC's retry throttling (``maxTokens``,
``tokenRatio``: each failure -1, each success +``tokenRatio``, retries stop
while tokens <= max/2; its documented example is 10 and 0.1) with the AWS
SDKs' standard retry mode for scale and for timeouts (a retry quota of 500,
5 per retry, 10 per timeout, 1 back per success: a hundred failed retries,
timeouts costing double). Both always let the *first* attempt of a call go
and throttle only retries. Here a process's queue is itself the retry loop (a
daemon resumes the same posts again and again), so every request to the host
is gated, and the numbers sit between the two:

* **20 tokens, admission while paying for a failure leaves at least half**:
  ten failures in a row from a full bucket (gRPC's example allows five, AWS's
  quota a hundred). Fewer than ten would stop a single upload over a flaky
  link that fails two chunks in three (each failure is followed by a HEAD
  that succeeds); more would let a daemon's queue burn through dozens of
  requests on a sick host before anything holds it back.
* **failure -1, timeout or lost connection -2** (AWS's 2:1: a request that
  timed out held the server's resources longest), **answer +0.1** (gRPC's
  ratio: full speed as long as fewer than about 1 request in 11 fails).
* **+0.1 token per second of time**: a process that sends nothing earns no
  refunds, and since first attempts are gated too it would otherwise never be
  let back in. It keeps at most one failing request per 10 s going to a host
  that fails most, but not all, of its requests (all of them in a row is the
  breaker's case).

The breaker opens after **5 consecutive failures** (Envoy's outlier
detection uses the same ``consecutive_5xx: 5``). The n-th consecutive open
period is drawn uniformly from the upper half of ``min(240 s, 30 s *
2**(n-1))``: 15-30 s, 30-60 s, ... then 120-240 s ("equal jitter", like
Envoy's ejection time growing from a 30 s base with each ejection). Never a
near-zero wait, and a fleet that saw the same outage is spread over minutes,
not seconds. The cap is **240 s**, below the 300 s cap of a single upload's
full-jitter backoff, because it decides how long after a recovery a client
learns of it: at its next probe, at most one open period later. With periods
in 120-240 s that is about 90 s on average and 220 s at the 99th percentile
(``benchmarks/outage.py``: 10,000 clients, 30-minute outage). Full jitter up
to 300 s instead puts the 99th percentile near 270 s, with no room left for a
probe that the recovering server turns away, and sends more requests during
the outage (its waits average 150 s, equal jitter's 180 s). Against a fleet
retrying every 5 s, these defaults send 20 times fewer requests during that
outage. A half-open probe that never reports (its process died) is presumed
lost after 60 s. ``Retry-After`` is obeyed up to an hour (and never longer
than the uploader's own :class:`~steadypost.policy.RetryPolicy` cap).

Everything here is pure: time and randomness are parameters, and storage is
an optional :class:`HostStateStore` (the :class:`~steadypost.journal.Journal`
is one).
"""

from __future__ import annotations

import enum
import functools
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from .errors import (
    ConnectFailedError,
    ConnectionLostError,
    HostUnavailableError,
    JournalError,
)
from .flow import Response
from .policy import parse_retry_after

log = logging.getLogger("steadypost")

T = TypeVar("T")

DEFAULT_BUDGET_TOKENS = 20.0
DEFAULT_BUDGET_FAILURE_COST = 1.0
DEFAULT_BUDGET_TIMEOUT_COST = 2.0
DEFAULT_BUDGET_SUCCESS_REFUND = 0.1
DEFAULT_BUDGET_REFILL_PER_S = 0.1

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_OPEN_BASE_S = 30.0
DEFAULT_OPEN_CAP_S = 240.0
DEFAULT_OPEN_JITTER = 0.5
DEFAULT_PROBE_TIMEOUT_S = 60.0
DEFAULT_PROBE_WAIT_S = 15.0

DEFAULT_HOST_RETRY_AFTER_CAP_S = 3600.0
#: Answers that say the host is in trouble (other answers, even 4xx, show it works).
DEFAULT_FAILURE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: A request this many seconds early for its host's next time is let through.
EARLY_S = 1.0

#: The journal host-table ``kind`` of a breaker's state.
BREAKER_KIND = "breaker"

_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=1024)
def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, default port filled in: the guard's key."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS.get(scheme, 0)}"


def host_name(origin: str) -> str:
    """The host of an origin, as shown to people (``uploads.example.com``)."""
    return urlsplit(origin).hostname or origin


# --- the retry budget ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BudgetOptions:
    """A per-host retry budget (see the module docstring for the defaults' reasons)."""

    max_tokens: float = DEFAULT_BUDGET_TOKENS
    """The bucket's size; it starts full. Requests stop at half."""
    failure_cost: float = DEFAULT_BUDGET_FAILURE_COST
    """Tokens a failed request costs (a 5xx, 429, 408, a refused connection)."""
    timeout_cost: float = DEFAULT_BUDGET_TIMEOUT_COST
    """Tokens a request that timed out or lost its connection costs."""
    success_refund: float = DEFAULT_BUDGET_SUCCESS_REFUND
    """Tokens every other answer gives back."""
    refill_per_s: float = DEFAULT_BUDGET_REFILL_PER_S
    """Tokens regained per second of time, so an idle process is not shut out forever."""

    def __post_init__(self) -> None:
        if not self.max_tokens > 0:
            raise ValueError("BudgetOptions.max_tokens must be > 0")
        if min(self.failure_cost, self.timeout_cost, self.success_refund) < 0:
            raise ValueError("BudgetOptions costs and refunds must be >= 0")
        if not self.refill_per_s > 0:
            raise ValueError("BudgetOptions.refill_per_s must be > 0")
        if self.failure_cost > self.max_tokens / 2:
            raise ValueError("BudgetOptions.failure_cost must be at most half of max_tokens")


class TokenBucket:
    """A retry budget: failures cost tokens, answers refund some, time refills slowly.

    Not thread-safe by itself (the :class:`HostRegistry` locks). ``now`` is
    any clock's seconds; time going backwards refills nothing.
    """

    def __init__(self, options: BudgetOptions | None = None) -> None:
        self.options = options or BudgetOptions()
        self.tokens = self.options.max_tokens
        self._at: float | None = None

    @property
    def threshold(self) -> float:
        """Half the bucket: a request must leave at least this after paying for its failure."""
        return self.options.max_tokens / 2

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            gained = (now - self._at) * self.options.refill_per_s
            self.tokens = min(self.options.max_tokens, self.tokens + gained)
        if self._at is None or now > self._at:
            self._at = now

    def level(self, now: float) -> float:
        """The tokens in the bucket at ``now``."""
        self._refill(now)
        return self.tokens

    def admits(self, now: float) -> bool:
        """Whether a request may go: paying for its failure leaves at least half the bucket."""
        return self.level(now) - self.options.failure_cost >= self.threshold - 1e-9

    def wait_s(self, now: float) -> float:
        """Seconds until :meth:`admits` is true again (0 if it is now)."""
        missing = self.threshold + self.options.failure_cost - self.level(now)
        return max(0.0, missing / self.options.refill_per_s)

    def charge(self, now: float, *, timeout: bool = False) -> None:
        """A request failed (``timeout``: it timed out or lost its connection)."""
        cost = self.options.timeout_cost if timeout else self.options.failure_cost
        self.tokens = max(0.0, self.level(now) - cost)

    def refund(self, now: float) -> None:
        """A request got an answer that shows the host works."""
        self.tokens = min(self.options.max_tokens, self.level(now) + self.options.success_refund)


# --- the circuit breaker -----------------------------------------------------------


class BreakerPhase(str, enum.Enum):
    CLOSED = "closed"
    """Requests flow; consecutive failures are counted."""
    OPEN = "open"
    """Nothing is sent until ``open_until``."""
    HALF_OPEN = "half_open"
    """One probe request is out; everybody else waits for its answer."""


@dataclass(frozen=True, kw_only=True)
class BreakerOptions:
    """A per-host circuit breaker (see the module docstring for the defaults' reasons)."""

    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    """Consecutive failed requests that open the breaker."""
    open_base_s: float = DEFAULT_OPEN_BASE_S
    """The first open period's ceiling; it doubles with each failed probe ..."""
    open_cap_s: float = DEFAULT_OPEN_CAP_S
    """... up to this."""
    open_jitter: float = DEFAULT_OPEN_JITTER
    """An open period is drawn from ``[ceiling * (1 - open_jitter), ceiling]``."""
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
    """A probe not reported within this is presumed lost; another one may go."""
    probe_wait_s: float = DEFAULT_PROBE_WAIT_S
    """How long a request turned away while a probe is out is told to wait (at most)."""
    retry_after_cap_s: float = DEFAULT_HOST_RETRY_AFTER_CAP_S
    """A ``Retry-After`` longer than this is obeyed only this long."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("BreakerOptions.failure_threshold must be at least 1")
        if not 0 < self.open_base_s <= self.open_cap_s:
            raise ValueError("BreakerOptions needs 0 < open_base_s <= open_cap_s")
        if not 0 <= self.open_jitter <= 1:
            raise ValueError("BreakerOptions.open_jitter must be within [0, 1]")
        if not (self.probe_timeout_s > 0 and self.probe_wait_s > 0):
            raise ValueError("BreakerOptions probe times must be > 0")


@dataclass(frozen=True, kw_only=True)
class BreakerState:
    """One host's breaker, as stored (``to_json``) in the journal's host table."""

    phase: BreakerPhase = BreakerPhase.CLOSED
    failures: int = 0
    """Consecutive failed requests."""
    opens: int = 0
    """Consecutive open periods without an answer in between (sets the next period's length)."""
    open_until: float = 0.0
    probe_until: float = 0.0
    """While half-open: when the probe out is presumed lost."""
    not_before: float = 0.0
    """The server's ``Retry-After``: nothing goes to the host before this."""

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value, "failures": self.failures, "opens": self.opens,
            "open_until": self.open_until, "probe_until": self.probe_until,
            "not_before": self.not_before,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> BreakerState:
        """The state stored in ``data``; anything unreadable is a closed breaker."""
        if not data:
            return cls()
        try:
            return cls(
                phase=BreakerPhase(data.get("phase", "closed")),
                failures=int(data.get("failures", 0)),
                opens=int(data.get("opens", 0)),
                open_until=float(data.get("open_until", 0.0)),
                probe_until=float(data.get("probe_until", 0.0)),
                not_before=float(data.get("not_before", 0.0)),
            )
        except (TypeError, ValueError):
            return cls()


@dataclass(frozen=True)
class Admission:
    """The answer to "may a request go to this host now?"."""

    allowed: bool
    probe: bool = False
    """The request is the half-open breaker's single probe."""
    wait_s: float = 0.0
    """When refused: seconds until it is worth asking again."""
    reason: str = ""
    """When refused: why, for people (``"circuit open, next probe"``)."""


ALLOWED = Admission(True)
_CLOSED = BreakerState()


class CircuitBreaker:
    """Closed -> open after N consecutive failures -> half-open (one probe) -> closed or open.

    Pure: the state is a :class:`BreakerState` value passed in and returned, so
    it can live in memory or in the journal. ``rng`` draws the open periods.
    """

    def __init__(self, options: BreakerOptions | None = None, *, rng: random.Random) -> None:
        self.options = options or BreakerOptions()
        self.rng = rng

    def open_period(self, opens: int) -> float:
        """The length of the ``opens``-th consecutive open period (1-based), jittered."""
        o = self.options
        doubled = o.open_base_s * 2.0 ** (min(opens, 60) - 1)
        ceiling = min(o.open_cap_s, doubled)
        return self.rng.uniform(ceiling * (1.0 - o.open_jitter), ceiling)

    def peek(self, state: BreakerState, now: float) -> Admission:
        """Whether a request could go now, without taking the half-open probe.

        A request up to :data:`EARLY_S` early for the host's next time goes:
        a flow that slept out the same ``Retry-After`` on another clock
        reading must not be turned away for a few milliseconds.
        """
        early = now + EARLY_S
        if early < state.not_before:
            return Admission(False, wait_s=state.not_before - now,
                             reason="asked to wait (Retry-After), next attempt")  # fmt: skip
        if state.phase is BreakerPhase.OPEN and early < state.open_until:
            return Admission(False, wait_s=state.open_until - now,
                             reason="circuit open, next probe")  # fmt: skip
        if state.phase is BreakerPhase.HALF_OPEN and now < state.probe_until:
            wait = min(state.probe_until - now, self.options.probe_wait_s)
            return Admission(False, wait_s=wait, reason="a probe request is out, next try")
        if state.phase is BreakerPhase.CLOSED:
            return ALLOWED
        return Admission(True, probe=True)

    def admit(self, state: BreakerState, now: float) -> tuple[Admission, BreakerState]:
        """:meth:`peek`, and if the request is the probe, the half-open state it leaves."""
        admission = self.peek(state, now)
        if not admission.probe:
            return admission, state
        probing = replace(state, phase=BreakerPhase.HALF_OPEN,
                          probe_until=now + self.options.probe_timeout_s)  # fmt: skip
        return admission, probing

    def record(
        self, state: BreakerState, now: float, *, failed: bool, retry_after: float | None = None
    ) -> BreakerState:
        """The state after a request's outcome (``retry_after``: the server's, in seconds)."""
        if retry_after is not None:
            until = now + min(max(retry_after, 0.0), self.options.retry_after_cap_s)
            state = replace(state, not_before=max(state.not_before, until))
        if not failed:
            if state.phase is BreakerPhase.CLOSED and state.failures == 0 and state.opens == 0:
                return state
            return replace(state, phase=BreakerPhase.CLOSED, failures=0, opens=0,
                           open_until=0.0, probe_until=0.0)  # fmt: skip
        failures = state.failures + 1
        if state.phase is BreakerPhase.HALF_OPEN or (
            state.phase is BreakerPhase.CLOSED and failures >= self.options.failure_threshold
        ):
            opens = state.opens + 1
            return replace(state, phase=BreakerPhase.OPEN, failures=failures, opens=opens,
                           open_until=now + self.open_period(opens), probe_until=0.0)  # fmt: skip
        # Closed below the threshold, or a late answer to a request sent before it opened.
        return replace(state, failures=failures)


# --- one process's hosts -------------------------------------------------------------


class HostStateStore(Protocol):
    """Where breaker state is shared between processes (a :class:`~steadypost.journal.Journal`)."""

    def get_host_state(self, host: str, kind: str) -> dict[str, Any] | None: ...

    def update_host_state(
        self, host: str, kind: str, update: Callable[[dict[str, Any] | None], Mapping[str, Any]]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class HostOptions:
    """Everything the per-host guard decides with. Every field has a named default."""

    breaker: BreakerOptions = field(default_factory=BreakerOptions)
    budget: BudgetOptions = field(default_factory=BudgetOptions)
    failure_statuses: frozenset[int] = DEFAULT_FAILURE_STATUSES
    """Statuses that count as the host failing (any other answer shows it works)."""


class HostRegistry:
    """The breakers and budgets of one process, by origin. Thread-safe.

    Every :class:`~steadypost.Uploader` uses :func:`default_registry` unless
    given ``hosts=HostRegistry(...)``; get a guard bound to a journal with
    :meth:`guard`. ``rng`` draws the breakers' open periods.
    """

    def __init__(self, options: HostOptions | None = None, *, rng: random.Random | None = None):
        self.options = options or HostOptions()
        self.breaker = CircuitBreaker(self.options.breaker, rng=rng or random.Random())
        self._lock = threading.Lock()
        self._states: dict[str, BreakerState] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def guard(
        self, store: HostStateStore | None = None, *, retry_after_cap_s: float | None = None
    ) -> HostGuard:
        """A guard over this registry whose breaker state lives in ``store`` (if given).

        ``retry_after_cap_s`` lowers the breaker's cap on ``Retry-After`` for
        what this guard records (an uploader passes its retry policy's), so
        the host is never held back longer than the flows would wait.
        """
        return HostGuard(self, store, retry_after_cap_s=retry_after_cap_s)

    def state(self, origin: str) -> BreakerState:
        """The last breaker state this process saw for ``origin`` (a URL is fine too)."""
        return self._state(origin_of(origin))

    def bucket(self, origin: str) -> TokenBucket:
        """The retry budget of ``origin`` (a URL is fine too) in this process."""
        return self._bucket(origin_of(origin))

    def _state(self, key: str) -> BreakerState:
        with self._lock:
            return self._states.get(key, _CLOSED)

    def _bucket(self, key: str) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self.options.budget)
            return bucket

    def reset(self) -> None:
        """Forget every host (closed breakers, full budgets) in this process."""
        with self._lock:
            self._states.clear()
            self._buckets.clear()


class HostGuard:
    """What the drivers ask before each request and tell after it (see the module docstring).

    Breaker transitions go through ``store`` (read on every admission: one
    SELECT; written only when the state changes, in one transaction, so two
    processes never both take the half-open probe). Without a store, or if
    the store fails, the registry's memory is used.
    """

    def __init__(
        self,
        registry: HostRegistry,
        store: HostStateStore | None = None,
        *,
        retry_after_cap_s: float | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.retry_after_cap_s = retry_after_cap_s
        """The caller's own cap on ``Retry-After`` (its :class:`~steadypost.RetryPolicy`'s)."""

    # -- breaker state, in the store or in memory --

    def _remember(self, origin: str, state: BreakerState) -> None:
        with self.registry._lock:
            self.registry._states[origin] = state

    def _load(self, origin: str) -> BreakerState:
        if self.store is not None:
            try:
                state = BreakerState.from_json(self.store.get_host_state(origin, BREAKER_KIND))
            except JournalError as exc:
                log.warning("host state of %s unreadable, using this process's: %s", origin, exc)
            else:
                self._remember(origin, state)
                return state
        return self.registry._state(origin)

    def _apply(self, origin: str, step: Callable[[BreakerState], tuple[T, BreakerState]]) -> T:
        """Run ``step`` on the current state; store its new state if it changed."""
        current = self._load(origin)
        result, new = step(current)
        if new == current:
            return result
        if self.store is not None:
            box: list[tuple[T, BreakerState]] = []

            def update(data: dict[str, Any] | None) -> Mapping[str, Any]:
                box.append(step(BreakerState.from_json(data)))  # on the freshest state
                return box[-1][1].to_json()

            try:
                self.store.update_host_state(origin, BREAKER_KIND, update)
            except JournalError as exc:
                log.warning("cannot store host state of %s, keeping it in memory: %s", origin, exc)
            else:
                result, new = box[-1]
        self._remember(origin, new)
        return result

    # -- what the drivers call --

    def _refusal(self, origin: str, admission: Admission) -> HostUnavailableError:
        seconds = max(1, math.ceil(admission.wait_s))
        host = host_name(origin)
        return HostUnavailableError(
            f"{host} is recovering: {admission.reason} in {seconds} s",
            host=host, retry_after=admission.wait_s, reason=admission.reason,
        )  # fmt: skip

    def _budget(self, origin: str, now: float) -> Admission:
        bucket = self.registry._bucket(origin)
        with self.registry._lock:
            if bucket.admits(now):
                return ALLOWED
            wait = bucket.wait_s(now)
        return Admission(False, wait_s=wait, reason="retry budget spent, next attempt")

    def check(self, origin: str, now: float) -> HostUnavailableError | None:
        """Why a request to ``origin`` would be refused now, or ``None``; takes no probe."""
        origin = origin_of(origin)
        admission = self.registry.breaker.peek(self._load(origin), now)
        if admission.allowed and not admission.probe:
            admission = self._budget(origin, now)
        return None if admission.allowed else self._refusal(origin, admission)

    def admit(self, origin: str, now: float) -> HostUnavailableError | None:
        """``None`` if a request to ``origin`` may go now, else the error to throw instead.

        The half-open probe bypasses the budget (it is the one request that
        finds out whether the host is back).
        """
        origin = origin_of(origin)
        breaker = self.registry.breaker
        admission = self._apply(origin, lambda s: breaker.admit(s, now))
        if admission.allowed and not admission.probe:
            admission = self._budget(origin, now)
        return None if admission.allowed else self._refusal(origin, admission)

    def record(
        self, origin: str, response: Response | None, error: BaseException | None, now: float
    ) -> None:
        """Account for one exchange with ``origin``: the budget, the breaker, ``Retry-After``."""
        origin = origin_of(origin)
        retry_after: float | None = None
        timeout = False
        if response is not None:
            failed = response.status in self.registry.options.failure_statuses
            if response.status >= 400:
                retry_after = parse_retry_after(response.header("retry-after"), now=now)
                if retry_after is not None and self.retry_after_cap_s is not None:
                    retry_after = min(retry_after, self.retry_after_cap_s)
        elif isinstance(error, ConnectFailedError | ConnectionLostError):
            failed, timeout = True, isinstance(error, ConnectionLostError)
        else:
            return  # a local problem (the file, a cancel): says nothing about the host
        bucket = self.registry._bucket(origin)
        with self.registry._lock:
            if failed:
                bucket.charge(now, timeout=timeout)
            else:
                bucket.refund(now)
        breaker = self.registry.breaker
        self._apply(
            origin,
            lambda s: (None, breaker.record(s, now, failed=failed, retry_after=retry_after)),
        )


# --- the process-wide default -----------------------------------------------------------

_defaults: dict[tuple[str, Callable[[], float]], HostRegistry] = {}
_defaults_lock = threading.Lock()


def default_registry(
    journal_path: str | os.PathLike[str], clock: Callable[[], float] = time.time
) -> HostRegistry:
    """The process's shared registry for the journal at ``journal_path``, on ``clock``.

    There is one per journal file: the in-process half of that journal's host
    table. An ordinary process (the CLI, the daemon, a creator tool) uses one
    journal and the system clock, so every upload and verification in it
    shares one registry. Separate journals (separate users) stay independent,
    and so do separate clocks: a breaker's times only mean something on the
    clock they were read from (tests give each uploader a fake one).
    """
    key = (os.path.abspath(os.fspath(journal_path)), clock)
    with _defaults_lock:
        registry = _defaults.get(key)
        if registry is None:
            registry = _defaults[key] = HostRegistry()
        return registry


__all__ = [
    "BREAKER_KIND",
    "Admission",
    "BreakerOptions",
    "BreakerPhase",
    "BreakerState",
    "BudgetOptions",
    "CircuitBreaker",
    "HostGuard",
    "HostOptions",
    "HostRegistry",
    "HostStateStore",
    "TokenBucket",
    "default_registry",
    "host_name",
    "origin_of",
]
