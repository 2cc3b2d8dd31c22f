"""Upload progress on stderr: a rich bar per file on a terminal, plain lines otherwise.

A bar shows the bytes sent, the speed (both in KiB/MiB/GiB) and the time
left; while the upload waits it shows why and counts down ("server busy
(503), retrying in 42 s"), and while ``upload``/``resume`` ride out an outage,
the host's next try ("platform recovering: circuit open, next try in 42 s").
Countdowns are computed from the clock at every refresh, never frozen. Each
wait and each resume is also written as a line above the bars, so the story
stays on screen. Without a terminal (a log file, CI, a pipe) the same events
come as plain lines, and the bytes every 10 %.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars
from rich.text import Text

from steadypost.cli import logs
from steadypost.cli.output import STATE_STYLE, seconds, size
from steadypost.cli.term import countdown
from steadypost.models import Post, Progress, ProgressKind

Clock = Callable[[], float]
_RETRYING = ", retrying in "
_NEXT_TRY = "next try in"
# "host is recovering: circuit open, next probe in 26 s" -> "circuit open"
_RECOVERING = re.compile(r"^\S+ is recovering: (.*?)(?:[,;] next (?:probe|attempt|try|look))?"
                         r"(?: in \d+ s)?$")  # fmt: skip
_GAVE_UP = re.compile(r"^gave up after \d+ attempt\(s\): ")
_IN_SECONDS = re.compile(r"(?:[,;]? next \w+)? in \d+(?:\.\d+)? s$")


def span(total_s: float) -> str:
    """A length of time as people write it: ``90 s``, ``30 min``, ``1 h 30 min``, ``2 h``."""
    total = max(0, math.ceil(total_s))
    if total < 60 or total % 60:
        return countdown(total)
    hours, minutes = divmod(total // 60, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def recovery_reason(last_error: str | None, seen: str | None = None) -> str:
    """Why a post waits, without a frozen "in N s" (``seen``: the last failure shown)."""
    text = (last_error or "").strip()
    match = _RECOVERING.match(text)
    why = match.group(1) if match else _IN_SECONDS.sub("", _GAVE_UP.sub("", text))
    parts = [p for p in (seen, why) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts.pop()
    return ", ".join(parts) or "waiting for the platform"


def _waiting(task: Task, clock: Clock) -> bool:
    until = task.fields.get("wait_until")
    return until is not None and until > clock()


class SpeedColumn(ProgressColumn):
    """The transfer speed in the bar's own units (KiB/s, MiB/s), not rich's decimal MB/s.

    Blank while the upload waits: the last speed would be a stale promise.
    """

    def __init__(self, clock: Clock = time.time) -> None:
        super().__init__()
        self.clock = clock

    def render(self, task: Task) -> Text:
        if _waiting(task, self.clock):
            return Text("")
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("?", style="progress.data.speed")
        return Text(f"{size(int(speed))}/s", style="progress.data.speed")


class TimeLeftColumn(TimeRemainingColumn):
    """Rich's time remaining, blank while the upload waits (the estimate means nothing then)."""

    def __init__(self, clock: Clock = time.time) -> None:
        super().__init__()
        self.clock = clock

    def render(self, task: Task) -> Text:
        return Text("") if _waiting(task, self.clock) else super().render(task)


class StatusColumn(ProgressColumn):
    """The countdown of a wait, or the file's final state."""

    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display

    def render(self, task: Task) -> Text:
        until = task.fields.get("wait_until")
        verb = task.fields.get("wait_verb", "retrying in")
        if until is not None:
            reason = task.fields.get("wait_reason", "waiting")
            left = until - self.display.clock()
            if left > 0:  # one countdown, live, for a retry and for a recovering platform
                return Text(f"{reason}, {verb} {countdown(left)}", style="yellow")
            return Text(f"{reason}, trying now", style="yellow")
        return Text.from_markup(task.fields.get("status", ""))


class Tracker:
    """The ``on_progress`` callback of one file's upload."""

    def __init__(self, display: Display, label: str, total: int) -> None:
        self.display = display
        self.label = label
        self.total = total
        self.task: TaskID | None = None
        self.shown_step = -1
        self.after_wait = False
        self.last_sent = 0
        self.last_reason: str | None = None
        """The last failure shown for this file ("server busy (503)")."""
        self.resume_from = 0
        """The journaled offset a new run after a wait goes on from."""
        bars = display.bars
        if bars is not None:
            self.task = bars.add_task(label, total=total or 1, status="", wait_until=None)

    def __call__(self, p: Progress) -> None:
        if p.kind is ProgressKind.WAIT:
            self._wait(p)
        elif p.kind is ProgressKind.BYTES:
            self._bytes(p)
        elif p.message:
            self.display.note(f"{self.label}: {p.message}")

    def _wait(self, p: Progress) -> None:
        self.after_wait = True
        reason = p.message.rsplit(_RETRYING, 1)[0] if _RETRYING in p.message else p.message
        self.last_reason = reason or self.last_reason
        left = countdown(p.wait_s) if p.wait_s >= 10 else seconds(p.wait_s)  # "0.9 s" stays
        text = f"{reason or 'waiting'}, retrying in {left}"
        self.display.note(f"[yellow]{escape(self.label)}: {escape(text)}[/]", markup=True)
        bars = self.display.bars
        if bars is not None and self.task is not None:
            until = self.display.clock() + p.wait_s
            bars.update(self.task, wait_reason=reason, wait_until=until, wait_verb="retrying in")

    def recovering(self, post: Post, until: float) -> None:
        """The post waits for its host until ``until``: a line, and a live countdown on the bar."""
        self.after_wait = True
        self.resume_from = post.offset
        reason = f"platform recovering: {recovery_reason(post.last_error, self.last_reason)}"
        text = f"{reason}, {_NEXT_TRY} {countdown(until - self.display.clock())}"
        self.display.note(f"[yellow]{escape(self.label)}: {escape(text)}[/]", markup=True)
        bars = self.display.bars
        if bars is not None and self.task is not None:
            bars.update(self.task, wait_reason=reason, wait_until=until, wait_verb=_NEXT_TRY)

    def _bytes(self, p: Progress) -> None:
        if self.after_wait:
            self.after_wait = False
            # A new run's first report may come before it has heard the server's offset:
            # the journaled one (what the server acknowledged) is where it goes on from.
            at = p.acknowledged or self.resume_from
            if 0 < at < self.total:
                self.display.note(
                    f"{self.label}: resuming at byte {at:,} (the server's offset), not from 0"
                )
        bars = self.display.bars
        if bars is not None and self.task is not None:
            if p.sent < self.last_sent:  # a chunk is sent again: restart the speed estimate
                bars.reset(self.task, total=self.total or 1, completed=p.sent, wait_until=None)
            else:
                bars.update(self.task, completed=p.sent, wait_until=None)
            self.last_sent = p.sent
            return
        step = 100 * p.sent // self.total // 10 if self.total else 10
        if step > max(self.shown_step, 0):
            self.shown_step = step
            self.display.note(
                f"{self.label}: {step * 10}% sent ({size(p.sent)} of {size(self.total)})"
            )

    def finish(self, post: Post) -> None:
        """Show the post's final state on its bar (plain output prints the result line only)."""
        bars = self.display.bars
        if bars is not None and self.task is not None:
            style = STATE_STYLE[post.state]
            bars.update(self.task, wait_until=None, status=f"[{style}]{post.state.value}[/]")


class Display:
    """Progress for several files; use as a context manager around the uploads."""

    def __init__(self, console: Console, *, clock: Clock = time.time, quiet: bool = False) -> None:
        self.console = console
        self.clock = clock
        self.quiet = quiet
        """``-q``: no bars and no lines (the results on stdout say how it ended)."""
        self.bars: Bars | None = None
        self._shown = logs.progress_shown()
        self._entered = False
        if console.is_terminal and not quiet:
            self.bars = Bars(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                SpeedColumn(clock),
                TimeLeftColumn(clock),
                StatusColumn(self),
                console=console,
            )

    def __enter__(self) -> Display:
        # The waits are shown here; the log does not say them again (cli.logs).
        self._shown.__enter__()
        self._entered = True
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop redrawing the bars (they stay on screen)."""
        if self.bars is not None:
            self.bars.stop()
        if self._entered:
            self._entered = False
            self._shown.__exit__()

    def track(self, label: str, total: int) -> Tracker:
        """A progress callback for one file of ``total`` bytes."""
        return Tracker(self, label, total)

    def note(self, text: str, *, markup: bool = False) -> None:
        """A line on stderr (above the bars while they are drawn); none with ``-q``."""
        if not self.quiet:
            self.console.print(text if markup else escape(text))
