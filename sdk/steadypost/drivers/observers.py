"""Observers the drivers report to: progress for the caller, and a fan-out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from steadypost.flow import FileBody, Observer, Request, Response, Sleep
from steadypost.flow.events import OffsetAcknowledged, PlatformAnswered, ServerDiscovered
from steadypost.models import Progress, ProgressKind
from steadypost.platforms.tus import ServerInfo

log = logging.getLogger("steadypost")

ProgressCallback = Callable[[Progress], None]


UploadObserver = Observer
"""What the drivers report to (the one :class:`~steadypost.flow.Observer` protocol)."""


class RunObserver:
    """Turns flow events into progress reports, logs and counters for one upload."""

    def __init__(
        self, total: int, on_progress: ProgressCallback | None, info_cache: dict[str, ServerInfo],
        *, on_answered: Callable[[str], None] | None = None, post_id: str = "",
    ) -> None:  # fmt: skip
        self.on_answered = on_answered
        self.post_id = post_id
        """Put in every :class:`~steadypost.Progress` this observer reports."""
        """Told the URL whose origin just proved to be the platform (see ``PlatformAnswered``)."""
        self.total = total
        self.on_progress = on_progress
        self.info_cache = info_cache
        self.acknowledged = 0
        self.bytes_sent = 0
        self.requests = 0
        self._last_body: tuple[FileBody, int] | None = None

    def _report(self, progress: Progress) -> None:
        if self.on_progress is not None:
            self.on_progress(replace(progress, post_id=self.post_id) if self.post_id else progress)

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None:  # fmt: skip
        self.requests += 1
        outcome = response.status if response is not None else f"failed: {error}"
        log.debug("%s %s -> %s (%.3f s)", request.method, request.url, outcome, elapsed_s)

    def on_wait(self, sleep: Sleep) -> None:
        message = f"{sleep.reason}, retrying in {sleep.seconds:.0f} s"
        if not sleep.logged:  # each wait reaches the log once
            log.info("%s", message)
        self._report(
            Progress(ProgressKind.WAIT, self.acknowledged, self.total, sent=self.acknowledged,
                     wait_s=sleep.seconds, message=message, reason=sleep.reason)
        )  # fmt: skip

    def on_event(self, event: object) -> None:
        if isinstance(event, OffsetAcknowledged):
            self.acknowledged = event.offset
            self._report(Progress(ProgressKind.BYTES, event.offset, self.total, sent=event.offset))
        elif isinstance(event, ServerDiscovered):
            self.info_cache[event.endpoint] = event.info
        elif isinstance(event, PlatformAnswered) and self.on_answered is not None:
            self.on_answered(event.url)
        log.debug("event %s", event)

    def on_body(self, body: FileBody, position: int) -> None:
        last = self._last_body  # (the body itself, held: an id() could be reused)
        previous = last[1] if last is not None and last[0] is body else body.offset
        self.bytes_sent += position - previous
        self._last_body = (body, position)
        self._report(Progress(ProgressKind.BYTES, self.acknowledged, self.total, sent=position))


class Tee:
    """Forwards every report to several observers, in order (the journal first)."""

    def __init__(self, *observers: UploadObserver) -> None:
        self.observers = observers

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None:  # fmt: skip
        for o in self.observers:
            o.on_exchange(request, response, error, elapsed_s)

    def on_wait(self, sleep: Sleep) -> None:
        for o in self.observers:
            o.on_wait(sleep)

    def on_event(self, event: object) -> None:
        for o in self.observers:
            o.on_event(event)

    def on_body(self, body: FileBody, position: int) -> None:
        for o in self.observers:
            o.on_body(body, position)
