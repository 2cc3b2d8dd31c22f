"""The SDK's log lines on the CLI's stderr, each retry once.

The SDK logs each wait once: a retry by the retry loop ("retrying in 0.9 s
(attempt 1 failed: connection lost)"), any other wait (a platform still
processing a video) by the driver. :class:`CliHandler` shows a retry as the
line a progress bar shows ("connection lost, retrying in 0.9 s"); while a
progress display runs, the display's own line is the only one. The driver's
other waits are shown with ``-v``.

Verbosity: ``-q`` errors only, default warnings and waits, ``-v`` the SDK's
info lines too, ``-vv`` (or ``--debug``) every request.
"""

from __future__ import annotations

import logging
import threading

from steadypost.cli.term import Term, countdown

_SHORT_S = 10.0

_displays = 0
_displays_lock = threading.Lock()


def threshold(verbosity: int) -> int:
    """The lowest level shown for a verbosity (-1 quiet ... 2 everything)."""
    if verbosity < 0:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)


def _from(record: logging.LogRecord, module: str, function: str) -> bool:
    return record.name.startswith("steadypost") and (record.module, record.funcName) == (
        module, function)  # fmt: skip


def is_wait(record: logging.LogRecord) -> bool:
    """The driver's line for a wait (``steadypost.drivers.observers``, ``on_wait``)."""
    return _from(record, "observers", "on_wait")


def is_retry_loop(record: logging.LogRecord) -> bool:
    """The retry loop's line for the same wait (``steadypost.flow.retrying``)."""
    return _from(record, "retrying", "_log_retry")


class progress_shown:  # noqa: N801 - used like a function: ``with progress_shown():``
    """While a progress display runs, it shows the waits; the log does not repeat them."""

    def __enter__(self) -> None:
        global _displays
        with _displays_lock:
            _displays += 1

    def __exit__(self, *exc: object) -> None:
        global _displays
        with _displays_lock:
            _displays -= 1


class CliHandler(logging.Handler):
    """Writes records as ``warning: ...`` lines through a :class:`Term` on stderr."""

    def __init__(self, term: Term, level_shown: int = logging.WARNING) -> None:
        super().__init__()
        self.term = term
        self.threshold = level_shown

    def _retry_line(self, record: logging.LogRecord) -> str | None:
        """The retry loop's record as the wait's own line, or ``None`` to drop it."""
        args = record.args if isinstance(record.args, tuple) else ()
        if _displays or len(args) != 3 or record.levelno < self.threshold:
            return None
        seconds, reason = float(args[0]), args[2]  # type: ignore[arg-type]
        left = f"{seconds:.1f} s" if seconds < _SHORT_S else countdown(seconds)
        return f"{reason}, retrying in {left}"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if is_retry_loop(record):
                line = self._retry_line(record)
                if line is not None:
                    self.term.line(line)
                return
            if is_wait(record):
                if not _displays and self.threshold <= logging.INFO:
                    self.term.line(record.getMessage())
                return
            if record.levelno < self.threshold:
                return
            message = record.getMessage()
            if record.exc_info and self.threshold <= logging.DEBUG:
                message += "\n" + self.format(record).split("\n", 1)[-1]
            if record.levelno >= logging.ERROR:
                label, style = "error:", "red"
            elif record.levelno >= logging.WARNING:
                label, style = "warning:", "yellow"
            else:
                label, style = f"{record.levelname.lower()}:", "dim"
            line = f"{self.term.style(label, style)} {message}"
            self.term.line(line, force=record.levelno >= logging.ERROR)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


__all__ = ["CliHandler", "is_retry_loop", "is_wait", "progress_shown", "threshold"]
