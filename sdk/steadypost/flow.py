"""The sans-I/O core: flows are generators that *yield effects*.

A flow (creating a tus upload, sending its chunks, publishing a post, ...) is
written once, as a generator. It yields what it needs done and receives the
answer::

    response = yield Request("HEAD", url, headers)   # the driver sends it
    yield Sleep(12.5, "server busy (503)")           # the driver waits
    yield Emit(OffsetAcknowledged(...))              # the driver reports it
    wait = yield Acquire("api.host", "key", "init", 6, 60.0, now)  # a rate-limit slot

The sync driver (:mod:`steadypost.drivers`) pumps the generator with
``httpx.Client``, the async driver with ``httpx.AsyncClient``; neither holds any
protocol logic. A failed exchange is *thrown into* the generator as a
:class:`~steadypost.errors.TransportError`, so flows handle network failures
with ordinary ``try``/``except``.

:func:`with_retries` runs one attempt-flow under tenacity's retry state
machine, turning tenacity's "sleep" decisions into :class:`Sleep` effects.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .errors import Outcome, RetriesExhaustedError, SteadypostError, WireBoundError
from .models import LocalFile
from .policy import RetryPolicy, describe, is_transient, retry_wait

log = logging.getLogger("steadypost")

T = TypeVar("T")


@dataclass(frozen=True)
class FileBody:
    """A request body streamed from disk: ``length`` bytes of ``file`` from ``offset``.

    The driver reads it in small blocks from the run's one open descriptor of
    the file, so memory does not grow with the chunk or file size, and checks
    that it is still the file ``file`` describes (a file changed mid-upload is
    a :class:`~steadypost.errors.FileProblemError`).
    """

    file: LocalFile
    offset: int
    length: int
    prefix: bytes = b""
    """Bytes sent before the file's (a ``multipart/form-data`` part's head, say)."""
    suffix: bytes = b""
    """Bytes sent after the file's (the multipart closing boundary)."""

    @property
    def wire_length(self) -> int:
        """Every byte the body puts on the wire: ``prefix`` + the file's ``length`` + ``suffix``."""
        return len(self.prefix) + self.length + len(self.suffix)

    @property
    def end(self) -> int:
        """The file position after the body's last byte."""
        return self.offset + self.length


@dataclass(frozen=True)
class Request:
    """An HTTP request a flow wants sent. ``headers`` keep their order."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | FileBody | None = None
    timeout_s: float | None = None
    """Overrides the read timeout for this request (e.g. a long final PATCH)."""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def body_length(self) -> int:
        if self.body is None:
            return 0
        if isinstance(self.body, FileBody):
            return self.body.wire_length
        return len(self.body)


@dataclass(frozen=True)
class Response:
    """The answer to a :class:`Request`. Header names are lower-cased."""

    status: int
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    content: bytes = b""
    url: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before going on; ``reason`` is shown to the user."""

    seconds: float
    reason: str


@dataclass(frozen=True)
class Digest:
    """Read ``body`` from disk and answer its raw digest (``hashlib`` name ``algorithm``).

    Used for the tus checksum extension, whose header must precede the body.
    """

    body: FileBody
    algorithm: str


class Hasher(Protocol):
    """The file's SHA-256 in the making (:class:`steadypost.drivers.files.FileHasher`)."""

    @property
    def future(self) -> Future[str]: ...

    def result(self) -> str: ...


@dataclass(frozen=True)
class FileSha256:
    """Wait for the whole file's SHA-256 from ``hasher``; answered with the hex digest.

    The hasher runs on its own thread from the moment the upload began (see
    :mod:`steadypost.digest`); by the time the server holds every byte it has
    usually finished. A changed or unreadable file is thrown into the flow as a
    :class:`~steadypost.errors.FileProblemError`.
    """

    hasher: Hasher


@dataclass(frozen=True)
class Emit:
    """Tell the driver's observer something happened (progress, a new upload URL)."""

    event: object


@dataclass(frozen=True)
class Acquire:
    """Take one slot of a documented rate limit before a request; answered with a wait.

    The driver's :class:`~steadypost.ratelimit.RateLimiter` answers ``0.0``
    when the slot was taken at ``now``, otherwise the seconds until one frees
    up (the flow then yields a :class:`Sleep` and asks again). ``scope`` is
    the API's host, ``key`` names the account without a secret (e.g.
    ``tiktok-rate:<token hash>``), ``bucket`` the limited endpoint: at most
    ``limit`` grants per ``window_s`` seconds (``None``: nothing is counted, only a
    hold is honoured).
    """

    scope: str
    key: str
    bucket: str
    limit: int | None
    window_s: float
    now: float
    hold_until: float | None = None
    """The platform said ``bucket`` is closed until then (a daily quota's reset, say):
    the limiter keeps it with the account's state and answers every ``Acquire`` of
    the bucket before then with the wait, whatever ``limit`` says."""


@dataclass(frozen=True)
class NoProgress:
    """The last answer from ``url``'s host was a failure although its status said yes.

    Yielded right after such an answer (a ``204`` that did not move the offset):
    the driver then counts that exchange as a *failed* one with the host's
    retry budget and circuit breaker, not as a success. ``reason`` is logged.
    """

    url: str
    reason: str


@dataclass(frozen=True)
class Misconfigured:
    """The last answer (or failure) from ``url`` shows a wrong endpoint, not a host in trouble.

    Yielded just before a flow raises :class:`~steadypost.errors.ConfigurationError`:
    the driver then tells the host's guard nothing about that exchange, so a
    wrong URL leaves no breaker state and spends no retry budget.
    """

    url: str
    reason: str


class Observer(Protocol):
    """Told what happens while a flow runs: the one observer protocol of the drivers.

    The driver reports every exchange, wait and event *before* the flow goes
    on (which is what lets the journal write intent before the next request),
    and each block of a request body as it is handed to the network. An
    exception raised here stops the run (the journal uses that when a post was
    cancelled or taken over by another process).
    """

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None: ...  # fmt: skip

    def on_wait(self, sleep: Sleep) -> None: ...

    def on_event(self, event: object) -> None: ...

    def on_body(self, body: FileBody, position: int) -> None: ...


class NullObserver:
    """Ignores everything."""

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None:  # fmt: skip
        return None

    def on_wait(self, sleep: Sleep) -> None:
        return None

    def on_event(self, event: object) -> None:
        return None

    def on_body(self, body: FileBody, position: int) -> None:
        return None


@dataclass(frozen=True)
class Drive:
    """Run ``flow`` to its end under its own ``observer``; answered with its result.

    How an operation flow (upload a journaled post, resume every due post,
    verify, cancel) runs each post's protocol flow with that post's journal
    recorder and open file: the driver pumps ``flow`` as it pumps any flow,
    then sends its value back (or throws in what it raised). If the driver
    is stopped meanwhile (Ctrl-C, a cancelled task), it closes ``flow`` and
    then the flow that yielded this: ``GeneratorExit`` is how a flow learns it
    was interrupted. ``file`` is the run's open file (a
    :class:`steadypost._fileio.OpenedFile`) that request bodies are read from.
    """

    flow: Flow[Any]
    observer: Observer
    file: Any = None


Effect = (
    Request | Sleep | Digest | FileSha256 | Emit | Acquire | NoProgress | Misconfigured | Drive
)
Flow = Generator[Effect, Any, T]


def make_headers(
    *groups: Iterable[tuple[str, str]] | Mapping[str, str],
) -> tuple[tuple[str, str], ...]:
    """Merge header groups into a tuple; later groups win, names compared case-insensitively."""
    merged: dict[str, tuple[str, str]] = {}
    for group in groups:
        items = group.items() if isinstance(group, Mapping) else group
        for key, value in items:
            merged[key.lower()] = (key, value)
    return tuple(merged.values())


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
        """The bound ``policy.wire_factor`` x ``size`` + one chunk (``None``: no bound)."""
        factor = policy.wire_factor
        limit = None if factor is None else int(factor * size) + chunk_size
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


# --- retries under tenacity ---------------------------------------------------------


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
            yield Sleep(float(action), reason)
        else:
            return action  # type: ignore[no-any-return]
