"""One process's hosts: the registry, the guard the drivers ask, the shared default.

With a store (the journal), a host's breaker *and* its retry budget live in the
journal's host table, read at each admission and changed in one transaction
that holds the row (:meth:`~steadypost.journal.Journal.update_host_state`), so
every process on one journal (a fleet of daemons on PostgreSQL) shares one
breaker and one budget per host: the fleet sends what one client would. A
write is made only when the state changes (an answer from a healthy host
writes nothing).
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from steadypost.errors import (
    ConnectFailedError,
    ConnectionLostError,
    HostUnavailableError,
    JournalError,
)
from steadypost.flow import Response
from steadypost.hosts._common import (
    ANSWERED_KIND,
    BREAKER_KIND,
    DEFAULT_FAILURE_STATUSES,
    T,
    host_name,
)
from steadypost.hosts.breaker import (
    _CLOSED,
    ALLOWED,
    Admission,
    BreakerOptions,
    BreakerPhase,
    BreakerState,
    CircuitBreaker,
)
from steadypost.hosts.budget import (
    BudgetOptions,
    TokenBucket,
)
from steadypost.origins import origin_of
from steadypost.policy import parse_retry_after

log = logging.getLogger("steadypost")

#: The journal host-table ``kind`` of a host's retry budget (tokens, and when counted).
BUDGET_KIND = "budget"


def _bucket_json(bucket: TokenBucket) -> dict[str, Any]:
    return {"tokens": bucket.tokens, "at": bucket._at}


def _bucket_from(options: BudgetOptions, data: Mapping[str, Any] | None) -> TokenBucket:
    """The bucket stored in ``data`` (a full one when there is none or it is unreadable)."""
    bucket = TokenBucket(options)
    try:
        if data:
            bucket.tokens = min(options.max_tokens, max(0.0, float(data["tokens"])))
            bucket._at = None if data.get("at") is None else float(data["at"])
    except (KeyError, TypeError, ValueError):
        bucket = TokenBucket(options)
    return bucket


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
        self._answered: set[str] = set()

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
            self._answered.clear()


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

    # -- has the origin ever answered like the platform? --

    def answered(self, origin: str) -> bool:
        """Whether ``origin`` ever answered like the platform (this process or the journal).

        Until it has, a flow reads its first failure there as a misconfiguration
        (a wrong URL), not an outage, and the drivers do not count it.
        """
        origin = origin_of(origin)
        with self.registry._lock:
            if origin in self.registry._answered:
                return True
        known = False
        if self.store is not None:
            try:
                known = self.store.get_host_state(origin, ANSWERED_KIND) is not None
            except JournalError as exc:
                log.warning("host state of %s unreadable: %s", origin, exc)
                known = True  # cannot tell: treat failures as an outage, as before
        if known:
            with self.registry._lock:
                self.registry._answered.add(origin)
        return known

    def mark_answered(self, origin: str, now: float) -> None:
        """Remember that ``origin`` answered like the platform (shared through the journal).

        Written once per process and origin: after that (or once read from the
        journal) the registry knows it, and every answer of a healthy host
        costs no journal write.
        """
        origin = origin_of(origin)
        with self.registry._lock:
            known = origin in self.registry._answered
            self.registry._answered.add(origin)
        if self.store is not None and not known:
            try:
                self.store.update_host_state(origin, ANSWERED_KIND, lambda old: old or {"at": now})
            except JournalError as exc:
                log.warning("cannot store host state of %s, keeping it in memory: %s", origin, exc)

    # -- what the drivers call --

    def _refusal(self, origin: str, admission: Admission) -> HostUnavailableError:
        seconds = max(1, math.ceil(admission.wait_s))
        host = host_name(origin)
        return HostUnavailableError(
            f"{host} is recovering: {admission.reason} in {seconds} s",
            host=host, retry_after=admission.wait_s, reason=admission.reason,
        )  # fmt: skip

    def _shared_bucket(self, origin: str) -> TokenBucket:
        """The host's budget: as the store has it (remembered here), or this process's."""
        if self.store is not None:
            try:
                data = self.store.get_host_state(origin, BUDGET_KIND)
            except JournalError as exc:
                log.warning("host state of %s unreadable, using this process's: %s", origin, exc)
            else:
                bucket = _bucket_from(self.registry.options.budget, data)
                with self.registry._lock:
                    self.registry._buckets[origin] = bucket
                return bucket
        return self.registry._bucket(origin)

    def _budget(self, origin: str, now: float) -> Admission:
        bucket = self._shared_bucket(origin)
        with self.registry._lock:
            if bucket.admits(now):
                return ALLOWED
            wait = bucket.wait_s(now)
        return Admission(False, wait_s=wait, reason="retry budget spent, next attempt")

    def _account(self, origin: str, now: float, *, failed: bool, timeout: bool) -> None:
        """Charge or refund the host's budget; in the store only when that changes it."""

        def step(bucket: TokenBucket) -> None:
            if failed:
                bucket.charge(now, timeout=timeout)
            else:
                bucket.refund(now)

        bucket = self._shared_bucket(origin)
        with self.registry._lock:
            before = bucket.level(now)
            step(bucket)
            changed = bucket.tokens != before
        if self.store is None or not changed:
            return

        def update(data: dict[str, Any] | None) -> Mapping[str, Any]:
            fresh = _bucket_from(self.registry.options.budget, data)  # on the freshest state
            step(fresh)
            return _bucket_json(fresh)

        try:
            stored = self.store.update_host_state(origin, BUDGET_KIND, update)
        except JournalError as exc:
            log.warning("cannot store host state of %s, keeping it in memory: %s", origin, exc)
            return
        with self.registry._lock:
            self.registry._buckets[origin] = _bucket_from(self.registry.options.budget, stored)

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
        self, origin: str, response: Response | None, error: BaseException | None, now: float,
        *, failed: bool | None = None,
    ) -> None:  # fmt: skip
        """Account for one exchange with ``origin``: the budget, the breaker, ``Retry-After``.

        ``failed=True`` counts an answer as a failure whatever its status (the
        flow found that it moved nothing forward).
        """
        origin = origin_of(origin)
        retry_after: float | None = None
        timeout = False
        judged = failed
        if response is not None:
            failed = judged or response.status in self.registry.options.failure_statuses
            if response.status >= 400:
                retry_after = parse_retry_after(response.header("retry-after"), now=now)
                if retry_after is not None and self.retry_after_cap_s is not None:
                    retry_after = min(retry_after, self.retry_after_cap_s)
        elif isinstance(error, ConnectFailedError | ConnectionLostError):
            failed, timeout = True, isinstance(error, ConnectionLostError)
        else:
            return  # a local problem (the file, a cancel): says nothing about the host
        assert failed is not None
        self._account(origin, now, failed=failed, timeout=timeout)
        breaker = self.registry.breaker

        def step(state: BreakerState) -> tuple[None, BreakerState]:
            if not failed and state.phase is BreakerPhase.OPEN:
                # The answer to a request sent before the breaker opened (its probe has not
                # gone yet): it says nothing about the host now. A fleet's late answers would
                # otherwise close the breaker again and again as the outage begins.
                return None, state
            return None, breaker.record(state, now, failed=failed, retry_after=retry_after)

        self._apply(origin, step)


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
