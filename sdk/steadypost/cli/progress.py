"""Upload progress on stderr: a rich bar per file on a terminal, plain lines otherwise.

A bar shows the bytes sent, the speed and the time left; while the upload
waits it shows why and counts down ("server busy (503), retrying in 42 s").
Each wait and each resume is also written as a line above the bars, so the
story stays on screen. Without a terminal (a log file, CI, a pipe) the same
events come as plain lines, and the bytes every 10 %.
"""

from __future__ import annotations

import logging
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
    TransferSpeedColumn,
)
from rich.progress import Progress as Bars
from rich.text import Text

from steadypost import Post, Progress, ProgressKind

from .output import STATE_STYLE, seconds, size

Clock = Callable[[], float]
_RETRYING = ", retrying in "


class StatusColumn(ProgressColumn):
    """The countdown of a wait, or the file's final state."""

    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display

    def render(self, task: Task) -> Text:
        until = task.fields.get("wait_until")
        if until is not None and (left := until - self.display.clock()) > 0:
            reason = task.fields.get("wait_reason", "waiting")
            return Text(f"{reason}, retrying in {left:.0f} s", style="yellow")
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
        text = f"{reason or 'waiting'}, retrying in {seconds(p.wait_s)}"
        self.display.note(f"[yellow]{escape(self.label)}: {escape(text)}[/]", markup=True)
        bars = self.display.bars
        if bars is not None and self.task is not None:
            until = self.display.clock() + p.wait_s
            bars.update(self.task, wait_reason=reason, wait_until=until)

    def _bytes(self, p: Progress) -> None:
        if self.after_wait:
            self.after_wait = False
            if 0 < p.acknowledged < self.total:
                self.display.note(
                    f"{self.label}: resuming at byte {p.acknowledged:,} "
                    "(the server's offset), not from 0"
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

    def __init__(self, console: Console, *, clock: Clock = time.time) -> None:
        self.console = console
        self.clock = clock
        self.bars: Bars | None = None
        self._log_level: int | None = None
        if console.is_terminal:
            self.bars = Bars(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                StatusColumn(self),
                console=console,
            )

    def __enter__(self) -> Display:
        # The waits are shown here; the SDK's own retry warnings would say the same twice.
        logger = logging.getLogger("steadypost")
        self._log_level = logger.level
        if logger.getEffectiveLevel() > logging.DEBUG:
            logger.setLevel(logging.ERROR)
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
        if self._log_level is not None:
            logging.getLogger("steadypost").setLevel(self._log_level)
            self._log_level = None

    def track(self, label: str, total: int) -> Tracker:
        """A progress callback for one file of ``total`` bytes."""
        return Tracker(self, label, total)

    def note(self, text: str, *, markup: bool = False) -> None:
        """A line on stderr (above the bars while they are drawn)."""
        self.console.print(text if markup else escape(text))
