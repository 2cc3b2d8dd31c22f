"""Bounded retrying inside a flow: tenacity's state machine, the deadline, the wire bound.

:func:`with_retries` runs one attempt-flow under tenacity, driven step by step:
its "sleep" decisions become :class:`~steadypost.flow.effects.Sleep` effects,
so there is one retry loop for both drivers and no ``AsyncRetrying``. The
wait is the larger of the full-jitter backoff (never below the policy's floor)
and the server's ``Retry-After``; attempts and the deadline are bounded.
:class:`WireMeter` bounds the bytes a post puts on the wire.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from steadypost.errors import (
    CertificateError,
    ConnectFailedError,
    HostUnavailableError,
    Outcome,
    RetriesExhaustedError,
    SteadypostError,
    WireBoundError,
)
from steadypost.flow.effects import Emit, FileBody, Flow, Request, Response, Sleep
from steadypost.flow.events import BodyNotSent, BodySending
from steadypost.policy import (
    NOT_PROCESSED_STATUSES,
    RetryPolicy,
    describe,
    is_transient,
    retry_wait,
)

log = logging.getLogger("steadypost")

T = TypeVar("T")


@dataclass
class WireMeter:
    """The request body bytes one post has put on the wire, against its bound.

    A flow calls :meth:`spend` before each request that carries file bytes;
    past ``limit`` it raises :class:`~steadypost.errors.WireBoundError`
    instead, so no server can make a client send a file many times over.
    ``spent`` starts from what the journal says earlier runs sent.
    """

    limit: int | None
    spent: int = 0

    @classmethod
    def for_file(
        cls, policy: RetryPolicy, size: int, chunk_size: int, *, spent: int = 0
    ) -> WireMeter:
        """The bound ``policy.wire_factor`` x ``size`` + one chunk (``None``: no bound).

        A chunk is never more than the file: with the default 64 MiB chunks,
        a 4 MiB file may put 12 MiB on the wire, not 72.
        """
        factor = policy.wire_factor
        limit = None if factor is None else int(factor * size) + min(chunk_size, size)
        return cls(limit, spent)

    def spend(self, length: int, *, what: str) -> None:
        """Count ``length`` bytes about to go; :class:`WireBoundError` if that passes the bound."""
        if self.limit is not None and self.spent + length > self.limit:
            raise WireBoundError(
                f"{what}: this post has already sent {self.spent:,} bytes; sending {length:,} "
                f"more would pass its bound of {self.limit:,} (the server keeps losing or "
                "refusing what it is sent); post it again once the server is fixed"
            )
        self.spent += length

    def refund(self, length: int) -> None:
        """Uncount a body that certainly never left (no connection, or the guard held it)."""
        self.spent = max(0, self.spent - length)

    def sending(self, upload_url: str | None, body: FileBody, *, what: str) -> Flow[None]:
        """Count ``body`` before it goes, and journal the intent (:class:`BodySending`).

        ``upload_url`` is the upload the bytes go to (``None``: a creation request
        carrying the first bytes). Past the bound: :class:`WireBoundError`.
        """
        self.spend(body.length, what=what)
        yield Emit(BodySending(upload_url, body.offset, body.end))

    def exchange(self, request: Request) -> Flow[Response]:
        """Send ``request``; a file body that never took is uncounted (and the journal told).

        Nothing of it left (no connection, a TLS failure, the host's guard held it),
        or the server refused it as busy (408/423/425/429/503: it did not act on
        it). Those are limited in time by the backoff, the retry budget and the
        breaker; every other body counts, whatever became of it.
        """
        try:
            response: Response = yield request
        except (ConnectFailedError, CertificateError, HostUnavailableError):
            yield from self._uncount(request)
            raise
        if response.status in NOT_PROCESSED_STATUSES:
            yield from self._uncount(request)
        return response

    def _uncount(self, request: Request) -> Flow[None]:
        if isinstance(request.body, FileBody):
            self.refund(request.body.length)
            yield Emit(BodyNotSent(request.body.length))


class _PoliteWait(wait_base):
    """Full-jitter backoff, or the server's ``Retry-After`` when it is longer."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return retry_wait(
            self._policy, retry_state.attempt_number, retry_after=retry_after, rng=self._rng
        )


class _DeadlineStop(stop_base):
    """Stop when the next wait would end past the deadline (on the injected clock)."""

    def __init__(self, clock: Callable[[], float], deadline: float | None) -> None:
        self._clock = clock
        self._deadline = deadline

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if self._deadline is None:
            return False
        return self._clock() + retry_state.upcoming_sleep > self._deadline


def _give_up(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    outcome = exc.outcome if isinstance(exc, SteadypostError) else Outcome.NOT_DELIVERED
    raise RetriesExhaustedError(
        f"gave up after {retry_state.attempt_number} attempt(s): {describe(exc) if exc else '?'}",
        outcome=outcome,
        attempts=retry_state.attempt_number,
    ) from exc


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    log.warning(
        "retrying in %.1f s (attempt %d failed: %s)",
        retry_state.upcoming_sleep,
        retry_state.attempt_number,
        describe(exc) if exc else "?",
    )


@dataclass(frozen=True, kw_only=True)
class RetryContext:
    """What a flow needs to retry politely: the policy, a clock, a random source."""

    policy: RetryPolicy
    clock: Callable[[], float]
    rng: random.Random
    deadline: float | None = None
    """Absolute time (on ``clock``) after which no new wait is started."""


def wait_before_retry(
    ctx: RetryContext, attempt: int, reason: str, *, retry_after: float | None = None
) -> Flow[None]:
    """A polite wait before attempt ``attempt + 1`` of a step outside :func:`with_retries`.

    For a flow that starts a step over itself (a vanished upload begun
    again): the same jittered backoff and floor, and the same deadline, past
    which it raises :class:`~steadypost.errors.RetriesExhaustedError` instead.
    """
    seconds = retry_wait(ctx.policy, attempt, retry_after=retry_after, rng=ctx.rng)
    if ctx.deadline is not None and ctx.clock() + seconds > ctx.deadline:
        raise RetriesExhaustedError(
            f"gave up after {attempt} attempt(s): {reason} (the deadline has come)",
            outcome=Outcome.NOT_DELIVERED,
            attempts=attempt,
        )
    yield Sleep(seconds, reason)


def with_retries(
    attempt: Callable[[], Flow[T]],
    ctx: RetryContext,
    *,
    retry_if: Callable[[BaseException], bool] | None = None,
) -> Flow[T]:
    """Run ``attempt()`` until it succeeds, yielding a :class:`Sleep` between tries.

    ``retry_if`` decides which failures are retried (default: transient network
    failures and the policy's retryable statuses). A failure that is not retried
    propagates unchanged; running out of attempts or time raises
    :class:`~steadypost.errors.RetriesExhaustedError` with the last failure as
    its cause and its outcome.
    """
    policy = ctx.policy

    def _should_retry(exc: BaseException) -> bool:
        return retry_if(exc) if retry_if is not None else is_transient(policy, exc)

    retrying = tenacity.Retrying(
        sleep=lambda _s: None,  # never used: sleeping is an effect
        stop=tenacity.stop_after_attempt(policy.max_attempts)
        | _DeadlineStop(ctx.clock, ctx.deadline),
        wait=_PoliteWait(policy, ctx.rng),
        retry=tenacity.retry_if_exception(_should_retry),
        before_sleep=_log_retry,
        retry_error_callback=_give_up,
    )
    retrying.begin()
    state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
    while True:
        action = retrying.iter(state)
        if isinstance(action, tenacity.DoAttempt):
            try:
                value = yield from attempt()
            except SteadypostError as exc:
                state.set_exception((type(exc), exc, exc.__traceback__))
            else:
                state.set_result(value)
        elif isinstance(action, tenacity.DoSleep):
            last = state.outcome.exception() if state.outcome else None
            reason = describe(last) if last else "retrying"
            state.prepare_for_next_attempt()
            yield Sleep(float(action), reason, logged=True)  # by _log_retry, just now
        else:
            return action  # type: ignore[no-any-return]
