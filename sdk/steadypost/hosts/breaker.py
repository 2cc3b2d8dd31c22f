"""The circuit breaker per host (see :mod:`steadypost.hosts`)."""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from steadypost.hosts._common import (
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_HOST_RETRY_AFTER_CAP_S,
    DEFAULT_OPEN_BASE_S,
    DEFAULT_OPEN_CAP_S,
    DEFAULT_OPEN_JITTER,
    DEFAULT_PROBE_TIMEOUT_S,
    DEFAULT_PROBE_WAIT_S,
    EARLY_S,
)

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
