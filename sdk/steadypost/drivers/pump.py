"""The two drivers that pump a flow: one sync, one async. No protocol logic here.

A driver takes each effect the flow yields, carries it out, and sends the
answer back (or throws the translated failure in):

* :class:`~steadypost.flow.Request` -> the HTTP layer's ``send``;
* :class:`~steadypost.flow.Sleep` -> the injected sleeper (a test passes a fake);
* :class:`~steadypost.flow.Digest` -> a checksum of part of the file;
* :class:`~steadypost.flow.FileSha256` -> the file hasher's result (waited for;
  the async driver awaits it without blocking the event loop);
* :class:`~steadypost.flow.Emit` -> the observer;
* :class:`~steadypost.flow.Acquire` -> the rate ``limiter`` (the seconds to wait);
* :class:`~steadypost.flow.Drive` -> another flow, pumped to its end under its
  own observer and open file, its result sent back.

The observer sees every exchange, wait and event *before* the flow goes on,
which is what lets the journal write intent before the next request. When
the driver is stopped from outside (Ctrl-C, a cancelled task) it closes the
flows it pumps, innermost first: a flow learns it was interrupted from
``GeneratorExit``.

With a ``guard`` (a :class:`~steadypost.hosts.HostGuard`), every request is
first *admitted* by its host's circuit breaker and retry budget; a refused
request is not sent: the guard's :class:`~steadypost.errors.HostUnavailableError`
is thrown into the flow instead. Every exchange's outcome is then *recorded*
with the guard (``Retry-After`` included), on the driver's ``clock``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

import httpx

from steadypost.drivers.clients import default_async_client, default_client
from steadypost.drivers.files import OpenedFile
from steadypost.drivers.http import AsyncHttp, SyncHttp, digest_body
from steadypost.errors import SteadypostError
from steadypost.flow import (
    Acquire,
    Concurrently,
    Digest,
    Drive,
    Effect,
    Emit,
    FileSha256,
    Flow,
    Misconfigured,
    NoProgress,
    NullObserver,
    Observer,
    Request,
    Response,
    Sleep,
)
from steadypost.hosts import origin_of
from steadypost.hosts.ratelimit import LocalRateLimiter, RateLimiter
from steadypost.models import Timeouts

T = TypeVar("T")
SyncClient = httpx.Client
AsyncClient = httpx.AsyncClient
default_sync_client = default_client
log = logging.getLogger("steadypost")

#: Answers :class:`~steadypost.flow.Acquire` when a driver is given no limiter.
PROCESS_RATE_LIMITER = LocalRateLimiter()


class Guard(Protocol):
    """Asked before each request, told after it (see :class:`~steadypost.hosts.HostGuard`)."""

    def admit(self, origin: str, now: float) -> SteadypostError | None: ...

    def record(
        self, origin: str, response: Response | None, error: BaseException | None, now: float,
        *, failed: bool | None = None,
    ) -> None: ...  # fmt: skip


class _Pump(Generic[T]):
    """Steps a flow, handling the effects that need no network or sleeping itself."""

    def __init__(
        self,
        flow: Flow[T],
        observer: Observer,
        check_cancelled: Callable[[], None],
        guard: Guard | None = None,
        clock: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None,
        file: OpenedFile | None = None,
    ):
        self.flow = flow
        self.file = file
        self.observer = observer
        self.check_cancelled = check_cancelled
        self.guard = guard
        self.clock = clock
        self.limiter = limiter if limiter is not None else PROCESS_RATE_LIMITER
        self.answer: Any = None
        self.failure: BaseException | None = None
        self.result: T | None = None
        self._unjudged: tuple[str, Response | None, SteadypostError | None] | None = None
        """The last exchange, until the flow has seen its answer (see :meth:`_judge`)."""

    def _judge(self, verdict: Effect | None) -> None:
        """Tell the guard how the last exchange went, once the flow has read its answer.

        By its status, unless the flow's next effect judged it: after
        :class:`NoProgress` a "yes" that moved nothing counts as a failure with
        the host's budget and breaker (counted as a success first, a run of them
        would keep resetting the breaker's count of failures); after
        :class:`Misconfigured` (a wrong URL) the guard is told nothing at all.
        """
        pending, self._unjudged = self._unjudged, None
        if pending is None or self.guard is None or isinstance(verdict, Misconfigured):
            return
        origin, response, failure = pending
        self.guard.record(origin, response, failure, self.clock(),
                          failed=True if isinstance(verdict, NoProgress) else None)  # fmt: skip

    def _step(self) -> Effect:
        try:
            if self.failure is None:
                effect = self.flow.send(self.answer)
            else:
                effect = self.flow.throw(self.failure)
        except BaseException:
            self._judge(None)
            raise
        self._judge(effect)
        return effect

    def next_io(self) -> Request | Sleep | FileSha256 | Drive | Concurrently | None:
        """The next effect that needs the driver's I/O, or ``None`` when the flow returned."""
        while True:
            try:
                effect = self._step()
            except StopIteration as stop:
                self.result = stop.value
                return None
            self.answer, self.failure = None, None
            if isinstance(effect, Request | Sleep):
                try:
                    self.check_cancelled()
                except SteadypostError as exc:
                    # Cancelled: thrown in instead of the request or wait, once the flow has
                    # read the last answer (an acknowledged offset is journaled first).
                    self.failure = exc
                    continue
            if isinstance(effect, Request | Sleep | FileSha256 | Drive | Concurrently):
                if isinstance(effect, Sleep):
                    self.observer.on_wait(effect)
                return effect
            if isinstance(effect, NoProgress | Misconfigured):
                log.info("%s", effect.reason)  # (the guard heard of it in _step)
            elif isinstance(effect, Digest):
                try:
                    self.answer = digest_body(effect.body, effect.algorithm, self.file)
                except SteadypostError as exc:
                    self.failure = exc
            elif isinstance(effect, Emit):
                self.observer.on_event(effect.event)
            elif isinstance(effect, Acquire):
                self.answer = self.limiter.acquire(effect)
            else:  # pragma: no cover - a flow bug
                raise TypeError(f"unknown effect {effect!r}")

    def hashed(self, answer: str | None, failure: SteadypostError | None) -> None:
        """Answer a :class:`~steadypost.flow.FileSha256` with the digest or its failure."""
        self.answer, self.failure = answer, failure

    def driven(self, value: object, failure: Exception | None) -> None:
        """Answer a :class:`~steadypost.flow.Drive` with the inner flow's result or failure."""
        self.answer, self.failure = value, failure

    def admit(self, request: Request) -> bool:
        """Whether ``request`` may be sent; if not, the guard's refusal goes into the flow."""
        if self.guard is None:
            return True
        refusal = self.guard.admit(origin_of(request.url), self.clock())
        if refusal is None:
            return True
        self.answer, self.failure = None, refusal
        return False

    def settle(
        self,
        request: Request,
        response: Response | None,
        failure: SteadypostError | None,
        started: float,
    ) -> None:
        if response is not None:  # stamped on the driver's clock: flows read the time from it
            response = replace(response, received_at=self.clock())
        self.answer, self.failure = response, failure
        self._unjudged = (origin_of(request.url), response, failure)
        self.observer.on_exchange(request, response, failure, time.monotonic() - started)


def _results(outcomes: list[Any]) -> list[Any]:
    """The flows' results; the first exception (once every flow has ended) is raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


class SyncDriver:
    """Pumps flows with blocking I/O: an ``httpx.Client`` and the injected ``sleep``.

    One per uploader call; it holds what every flow it pumps shares (the HTTP
    client and its timeouts, the host guard, the clock, the rate limiter).
    """

    def __init__(
        self, client: httpx.Client, *, timeouts: Timeouts, block_size: int,
        sleep: Callable[[float], None], check_cancelled: Callable[[], None] = lambda: None,
        guard: Guard | None = None, clock: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None, cancel: Callable[[], None] = lambda: None,
    ) -> None:  # fmt: skip
        self.client, self.timeouts, self.block_size = client, timeouts, block_size
        self.sleep, self.check_cancelled, self.cancel = sleep, check_cancelled, cancel
        self.guard, self.clock, self.limiter = guard, clock, limiter

    def _side_by_side(self, flows: tuple[Flow[Any], ...]) -> list[Any]:
        """Each flow on its own thread (the journal, the client and the guard are
        thread-safe); Ctrl-C cancels them all, and they stop at their next block or wait."""
        with ThreadPoolExecutor(max_workers=max(1, len(flows)),
                                thread_name_prefix="steadypost-post") as pool:  # fmt: skip
            futures = [pool.submit(self.run, flow, NullObserver()) for flow in flows]
            try:
                wait(futures)
            except BaseException:
                self.cancel()
                raise
        return _results([f.exception() or f.result() for f in futures])

    def run(self, flow: Flow[T], observer: Observer, file: OpenedFile | None = None) -> T:
        """Pump ``flow`` to completion; return its value (or raise what it raised)."""
        http = SyncHttp(self.client, timeouts=self.timeouts, block_size=self.block_size,
                        on_body=observer.on_body, check_cancelled=self.check_cancelled,
                        file=file)  # fmt: skip
        pump = _Pump(flow, observer, self.check_cancelled, self.guard, self.clock,
                     self.limiter, file)  # fmt: skip
        try:
            while (effect := pump.next_io()) is not None:
                if isinstance(effect, Sleep):
                    self.sleep(effect.seconds)
                elif isinstance(effect, FileSha256):
                    try:
                        pump.hashed(effect.hasher.result(), None)
                    except SteadypostError as exc:
                        pump.hashed(None, exc)
                elif isinstance(effect, Drive):
                    try:
                        pump.driven(self.run(effect.flow, effect.observer, effect.file), None)
                    except Exception as exc:  # (Ctrl-C and the like go on up)
                        pump.driven(None, exc)
                elif isinstance(effect, Concurrently):
                    try:
                        pump.driven(self._side_by_side(effect.flows), None)
                    except Exception as exc:
                        pump.driven(None, exc)
                elif pump.admit(effect):
                    started = time.monotonic()
                    try:
                        response, error = http.send(effect), None
                    except SteadypostError as exc:
                        response, error = None, exc
                    pump.settle(effect, response, error, started)
        except BaseException:
            flow.close()  # interrupted (or broken): the flow's GeneratorExit handlers run
            raise
        return pump.result  # type: ignore[return-value]


class AsyncDriver:
    """The asyncio twin of :class:`SyncDriver`: an ``httpx.AsyncClient``, an async ``sleep``."""

    def __init__(
        self, client: httpx.AsyncClient, *, timeouts: Timeouts, block_size: int,
        sleep: Callable[[float], Awaitable[None]],
        check_cancelled: Callable[[], None] = lambda: None, guard: Guard | None = None,
        clock: Callable[[], float] = time.time, limiter: RateLimiter | None = None,
    ) -> None:  # fmt: skip
        self.client, self.timeouts, self.block_size = client, timeouts, block_size
        self.sleep, self.check_cancelled = sleep, check_cancelled
        self.guard, self.clock, self.limiter = guard, clock, limiter

    async def _side_by_side(self, flows: tuple[Flow[Any], ...]) -> list[Any]:
        """Each flow as its own task; cancelled, it cancels them all (each closes its flow,
        so its post is released with its offset saved). The uploader goes on."""
        tasks = [asyncio.ensure_future(self.run(flow, NullObserver())) for flow in flows]
        try:
            done = await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return _results(list(done))

    async def run(self, flow: Flow[T], observer: Observer, file: OpenedFile | None = None) -> T:
        """Pump ``flow`` to completion; return its value (or raise what it raised)."""
        http = AsyncHttp(self.client, timeouts=self.timeouts, block_size=self.block_size,
                         on_body=observer.on_body, check_cancelled=self.check_cancelled,
                         file=file)  # fmt: skip
        pump = _Pump(flow, observer, self.check_cancelled, self.guard, self.clock,
                     self.limiter, file)  # fmt: skip
        try:
            while (effect := pump.next_io()) is not None:
                if isinstance(effect, Sleep):
                    await self.sleep(effect.seconds)
                elif isinstance(effect, FileSha256):
                    try:
                        await asyncio.wrap_future(effect.hasher.future)
                        pump.hashed(effect.hasher.result(), None)  # done: checks the file
                    except SteadypostError as exc:
                        pump.hashed(None, exc)
                elif isinstance(effect, Drive):
                    try:
                        value = await self.run(effect.flow, effect.observer, effect.file)
                        pump.driven(value, None)
                    except Exception as exc:  # (a cancelled task goes on up)
                        pump.driven(None, exc)
                elif isinstance(effect, Concurrently):
                    try:
                        pump.driven(await self._side_by_side(effect.flows), None)
                    except Exception as exc:
                        pump.driven(None, exc)
                elif pump.admit(effect):
                    started = time.monotonic()
                    try:
                        response, error = await http.send(effect), None
                    except SteadypostError as exc:
                        response, error = None, exc
                    pump.settle(effect, response, error, started)
        except BaseException:
            flow.close()  # interrupted (or broken): the flow's GeneratorExit handlers run
            raise
        return pump.result  # type: ignore[return-value]


__all__ = [
    "PROCESS_RATE_LIMITER",
    "AsyncClient",
    "AsyncDriver",
    "Guard",
    "NullObserver",
    "Observer",
    "SyncClient",
    "SyncDriver",
    "default_async_client",
    "default_sync_client",
]
