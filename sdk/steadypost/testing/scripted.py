"""Drive a flow with scripted answers on a fake clock: no sockets, no threads, no waiting.

Flows are generators that yield effects (:mod:`steadypost.flow`), so a test
can be the server: :func:`pump` hands every request to an ``answer``
function and sends back what it returns, advances a :class:`FakeClock` for
every wait, and records what happened::

    from steadypost.testing import FakeClock, pump

    def answer(request, body):
        offset = int(request.header("upload-offset")) + len(body)
        return Response(204, {"upload-offset": str(offset)})

    run = pump(upload.run(), answer, data=video_bytes, clock=FakeClock())
    assert run.error is None and len(run.exchanges) == 3

``answer(request, body)`` gets the request and the bytes of its body (read
from ``data``, the file's content) and returns a
:class:`~steadypost.flow.Response`, or raises a
:class:`~steadypost.errors.SteadypostError` (e.g.
:class:`~steadypost.errors.ConnectionLostError`) to fail the exchange the
way a driver would. It may advance the clock, to stand for a slow answer.
This is how the property-based hostile-server tests pump thousands of
scripts a second; it is public so a creator tool can test its own
platform adapters the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from steadypost.errors import SteadypostError
from steadypost.flow import (
    Acquire,
    Concurrently,
    Digest,
    Drive,
    Emit,
    FileBody,
    FileSha256,
    Flow,
    Misconfigured,
    NoProgress,
    Request,
    Response,
    Sleep,
)
from steadypost.testing.clock import FakeClock

T = TypeVar("T")

Answer = Callable[[Request, bytes], Response]
"""The scripted server: a request and its body bytes in, a response out (or it raises)."""

DEFAULT_MAX_EFFECTS = 100_000


@dataclass(frozen=True)
class Exchange:
    """One request the flow made, with what the script answered, on the fake clock."""

    request: Request
    body: bytes
    at: float
    """When it was sent."""
    waited_s: float
    """Seconds the flow slept since its previous request (or since it began)."""
    response: Response | None
    error: SteadypostError | None


@dataclass
class ScriptedRun(Generic[T]):
    """What :func:`pump` saw: every exchange, wait, event, and how the flow ended."""

    exchanges: list[Exchange] = field(default_factory=list)
    sleeps: list[Sleep] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    verdicts: list[NoProgress | Misconfigured] = field(default_factory=list)
    """What the flow judged of answers: a failure although the status said yes, a wrong URL."""
    result: T | None = None
    error: BaseException | None = None
    """What the flow raised (``None``: it returned ``result``)."""
    started_at: float = 0.0
    ended_at: float = 0.0


class EffectLimitError(AssertionError):
    """The flow yielded more effects than the pump allows: it does not end."""


def pump(
    flow: Flow[T],
    answer: Answer,
    *,
    data: bytes = b"",
    clock: FakeClock | None = None,
    max_effects: int = DEFAULT_MAX_EFFECTS,
) -> ScriptedRun[T]:
    """Run ``flow`` to its end against ``answer``; never raises what the flow raises.

    ``data`` is the content of the file the flow uploads (its bodies and its
    SHA-256 come from it). Every :class:`~steadypost.flow.Sleep` advances
    ``clock``; an :class:`~steadypost.flow.Acquire` is always granted. The
    flow's exception, whatever it is, ends up in ``run.error``; more than
    ``max_effects`` effects raise :class:`EffectLimitError`.
    """
    clock = clock if clock is not None else FakeClock()
    run: ScriptedRun[T] = ScriptedRun(started_at=clock.now())
    waited = 0.0
    reply: Any = None
    failure: BaseException | None = None
    for _ in range(max_effects):
        try:
            effect = flow.throw(failure) if failure is not None else flow.send(reply)
        except StopIteration as stop:
            run.result = stop.value
            break
        except BaseException as exc:  # the caller checks what it is
            run.error = exc
            break
        reply, failure = None, None
        if isinstance(effect, Request):
            body = _body(effect.body, data)
            sent_at = clock.now()
            response: Response | None = None
            error: SteadypostError | None = None
            try:
                response = answer(effect, body)
            except SteadypostError as exc:
                error = exc
            if response is not None and response.received_at is None:
                response = replace(response, received_at=clock.now())
            run.exchanges.append(Exchange(effect, body, sent_at, waited, response, error))
            reply, failure, waited = response, error, 0.0
        elif isinstance(effect, Sleep):
            run.sleeps.append(effect)
            clock.advance(effect.seconds)
            waited += effect.seconds
        elif isinstance(effect, Digest):
            part = data[effect.body.offset : effect.body.end]
            reply = hashlib.new(effect.algorithm, part).digest()
        elif isinstance(effect, FileSha256):
            reply = hashlib.sha256(data).hexdigest()
        elif isinstance(effect, Emit):
            run.events.append(effect.event)
        elif isinstance(effect, NoProgress | Misconfigured):
            run.verdicts.append(effect)
        elif isinstance(effect, Acquire):
            reply = 0.0
        elif isinstance(effect, Drive | Concurrently):  # one after the other, on the same clock
            inner = [effect.flow] if isinstance(effect, Drive) else list(effect.flows)
            runs = [pump(f, answer, data=data, clock=clock, max_effects=max_effects)
                    for f in inner]  # fmt: skip
            for sub in runs:
                run.exchanges += sub.exchanges
                run.sleeps += sub.sleeps
                run.events += sub.events
                run.verdicts += sub.verdicts
            failed = next((r.error for r in runs if r.error is not None), None)
            if failed is not None:
                failure = failed
            else:
                results = [r.result for r in runs]
                reply = results[0] if isinstance(effect, Drive) else results
        else:  # pragma: no cover - a flow bug
            raise TypeError(f"unknown effect {effect!r}")
    else:
        flow.close()
        raise EffectLimitError(f"the flow yielded more than {max_effects} effects")
    run.ended_at = clock.now()
    return run


def _body(body: bytes | FileBody | None, data: bytes) -> bytes:
    if body is None:
        return b""
    if isinstance(body, FileBody):
        return body.prefix + data[body.offset : body.end] + body.suffix
    return body
