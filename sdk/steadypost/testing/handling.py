"""How a simulated endpoint consumes a request body, chunk by chunk.

Each endpoint turns a :class:`~steadypost.testing.messages.RequestHead` into a
:class:`BodySink`. The transport feeds it the body as it arrives (so a reset
after N bytes really leaves N bytes stored), then calls ``finish()`` for the
answer, or ``abandon()`` when the connection broke first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .messages import Reply


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
