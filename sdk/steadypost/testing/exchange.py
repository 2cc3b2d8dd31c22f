"""One request's trip through the simulator, with the fault rules applied in order.

1. *Before the work*: an active :class:`Outage`, then a :class:`Respond` rule,
   answers instead of the endpoint (nothing is done).
2. *While the body arrives*: a :class:`ResetMidChunk` rule cuts the body after
   N bytes; the endpoint keeps what it received.
3. *After the work*: :class:`ProcessedButTimeout` / :class:`ProcessedButError`
   replace a successful answer, :class:`BadUploadOffset` falsifies it.

Both transports drive an :class:`Exchange` the same way::

    exchange = sim.exchange(head)
    for chunk in body:
        if not exchange.feed(chunk):
            break
    answer = exchange.finish()        # a Reply, or a Drop to act out
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from steadypost.testing.faults import (
    BadUploadOffset,
    Faults,
    Outage,
    ProcessedButError,
    ProcessedButTimeout,
    ResetMidChunk,
    Respond,
)
from steadypost.testing.messages import (
    HTML_ERROR_PAGE,
    TUS_VERSION,
    Answer,
    Drop,
    Reply,
    RequestHead,
    error_reply,
    retry_after_value,
)
from steadypost.testing.records import RequestRecord


@dataclass(frozen=True)
class Done:
    """An endpoint's answer plus what the fault rules need to know about it.

    ``step`` is the :data:`~steadypost.testing.faults.STEPS` name of the work
    done (``None`` when nothing was changed); ``final`` is true when this
    request stored an upload's last byte. ``length`` and ``acknowledged`` (the
    offset the client already knew) let ``BadUploadOffset`` invent a lie.
    """

    reply: Reply
    step: str | None = None
    final: bool = False
    length: int | None = None
    acknowledged: int | None = None


class BodySink(Protocol):
    """Receives one request's body and produces its answer."""

    @property
    def stores_body(self) -> bool:
        """Whether body bytes are kept (so ``ResetMidChunk`` applies)."""

    def write(self, data: bytes) -> None:
        """Take the next piece of the body."""

    def finish(self) -> Done:
        """The whole body arrived: act and answer."""

    def abandon(self) -> None:
        """The connection broke: keep what a real server would keep, answer nothing."""


class Fixed:
    """A sink whose answer was decided before the body: the body is read and dropped."""

    stores_body = False

    def __init__(self, done: Done | Reply) -> None:
        self._done = done if isinstance(done, Done) else Done(done)

    def write(self, data: bytes) -> None:
        del data

    def finish(self) -> Done:
        return self._done

    def abandon(self) -> None:
        return None


class Buffered:
    """A sink that collects a small body (JSON) and hands it to ``act`` at the end.

    Bodies above ``limit`` bytes are answered ``413`` without acting.
    """

    stores_body = True

    def __init__(self, act: _Act, *, limit: int) -> None:
        self._act = act
        self._limit = limit
        self._body = bytearray()
        self._too_big = False

    def write(self, data: bytes) -> None:
        if len(self._body) + len(data) > self._limit:
            self._too_big = True
        else:
            self._body += data

    def finish(self) -> Done:
        if self._too_big:
            return Done(Reply(413, (("Content-Type", "text/plain"),), b"body too large"))
        return self._act(bytes(self._body))

    def abandon(self) -> None:
        return None


class _Act(Protocol):
    def __call__(self, body: bytes, /) -> Done: ...


def _in_scope(methods: Collection[str] | None, path: str | None, head: RequestHead) -> bool:
    if methods is not None and head.method not in methods:
        return False
    return path is None or head.path.startswith(path)


def _respond(rule: Respond) -> Reply:
    headers = list(rule.headers)
    if rule.retry_after is not None:
        headers.append(("Retry-After", retry_after_value(rule.retry_after)))
    if rule.body is None and not rule.html:
        return error_reply(rule.status, headers=headers)
    body = rule.body if rule.body is not None else HTML_ERROR_PAGE
    content_type = rule.content_type or ("text/html" if rule.html else "application/octet-stream")
    return Reply(rule.status, (("Content-Type", content_type), *headers), body)


def _lie(rule: BadUploadOffset, done: Done) -> str | None:
    if rule.report == "missing":
        return None
    if rule.report == "beyond_length":
        return str((done.length or 0) + 1)
    return str((done.acknowledged or 0) - 1)


class Exchange:
    """A request in flight: feed it the body, then ``finish()`` for the answer."""

    def __init__(
        self,
        head: RequestHead,
        *,
        faults: Faults,
        clock: Callable[[], float],
        route: Callable[[RequestHead], BodySink],
        record: Callable[[RequestRecord], None],
    ) -> None:
        self.head = head
        self._faults = faults
        self._clock = clock
        self._record = record
        self._at = clock()
        self._fault: str | None = None
        self._received = 0
        self._stop_at: int | None = None
        self._tripped = False
        self._drop: Drop | None = None
        self._sink: BodySink
        early = self._before(self._at)
        if isinstance(early, Drop):
            self._drop = early
            self._sink = Fixed(Reply(503))  # never finished: the connection is refused
        elif early is not None:
            self._sink = Fixed(early)
        else:
            self._sink = route(head)
            if self._sink.stores_body:
                reset = faults.take(
                    ResetMidChunk, self._at, lambda r: _in_scope(r.methods, r.path, head)
                )
                if reset is not None:
                    self._fault, self._stop_at = "ResetMidChunk", reset.after_bytes

    @property
    def refused(self) -> bool:
        """True when the connection is refused: send nothing, raise a connect error."""
        return self._drop is not None

    def feed(self, data: bytes) -> bool:
        """Give the next body bytes; ``False`` means stop sending (the connection breaks)."""
        if self._drop is not None or self._tripped:
            return False
        if self._stop_at is not None and self._received + len(data) >= self._stop_at:
            data = data[: self._stop_at - self._received]
            self._tripped = True
        self._received += len(data)
        self._sink.write(data)
        return not self._tripped

    def finish(self, *, body_complete: bool = True) -> Answer:
        """The body ended (or the client vanished mid-body): the answer to act out."""
        answer: Answer
        if self._drop is not None:
            answer = self._drop
        elif self._tripped or self._stop_at is not None:
            self._sink.abandon()
            answer = Drop("reset")
        elif not body_complete:
            self._sink.abandon()
            answer = Drop("client_gone")
        else:
            answer = self._after(self._sink.finish())
        if isinstance(answer, Reply):
            answer = answer.with_header("Tus-Resumable", TUS_VERSION)
        self._log(answer)
        return answer

    def _before(self, now: float) -> Reply | Drop | None:
        head = self.head
        outage = self._faults.take(Outage, now, lambda r: _in_scope(None, r.path, head))
        if outage is not None:
            self._fault = "Outage"
            if outage.mode == "refuse":
                return Drop("refuse")
            extra = () if outage.retry_after is None else (
                ("Retry-After", retry_after_value(outage.retry_after)),)
            return error_reply(503, "the platform is down for maintenance", headers=extra)
        respond = self._faults.take(Respond, now, lambda r: _in_scope(r.methods, r.path, head))
        if respond is not None:
            self._fault = "Respond"
            return _respond(respond)
        return None

    def _after(self, done: Done) -> Answer:
        now = self._clock()
        reply = done.reply
        if done.step is not None and 200 <= reply.status < 300:
            steps = {done.step, "final_patch"} if done.final else {done.step}

            def hits(rule: ProcessedButError | ProcessedButTimeout) -> bool:
                return any(step in rule.on for step in steps)

            timeout = self._faults.take(ProcessedButTimeout, now, hits)
            if timeout is not None:
                self._fault = "ProcessedButTimeout"
                return Drop("timeout", hold_s=timeout.hold_s)
            error = self._faults.take(ProcessedButError, now, hits)
            if error is not None:
                self._fault = "ProcessedButError"
                return error_reply(error.status, "internal server error")
        if reply.header("Upload-Offset") is not None and 200 <= reply.status < 300:
            lie = self._faults.take(
                BadUploadOffset, now, lambda r: _in_scope(r.methods, None, self.head)
            )
            if lie is not None:
                self._fault = "BadUploadOffset"
                reply = reply.with_header("Upload-Offset", _lie(lie, done))
        return reply

    def _log(self, answer: Answer) -> None:
        head = self.head
        self._record(
            RequestRecord(
                method=head.method,
                path=head.path,
                status=answer.status if isinstance(answer, Reply) else None,
                headers=head.headers,
                at=self._at,
                origin=head.origin,
                body_bytes=self._received,
                fault=self._fault,
                broken=answer.kind if isinstance(answer, Drop) else None,
                query=head.query,
            )
        )
