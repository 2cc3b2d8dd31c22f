"""The daemon's log lines on stderr: for a terminal, for journald, or as JSON.

* In a terminal or a file: ``2025-11-24 14:02:11 INFO  clip.mp4 is up: confirmed``.
* Under systemd (``$JOURNAL_STREAM`` names stderr): no timestamp (journald adds
  its own) and a ``<6>`` syslog-priority prefix, so ``journalctl -p warning``
  filters by level.
* With ``--log-json``: one JSON object per line with ``time``, ``level``,
  ``logger``, ``message`` and, when known, ``post_id``, ``file``, ``state``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from typing import IO, Any

EXTRA_FIELDS = ("post_id", "file", "state", "next_at", "error", "pid")
"""``extra=`` keys the JSON lines carry when a log call gives them."""
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}  # fmt: skip


def under_journald(stream: IO[str], environ: dict[str, str] | None = None) -> bool:
    """True if ``stream`` is the journald stream systemd set up (``$JOURNAL_STREAM``).

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` of the stream it connected;
    a child that redirected stderr elsewhere keeps the variable, so it is
    compared with the stream itself. A stream without a file descriptor counts
    as journald whenever the variable is set.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        device, inode = (int(part) for part in value.split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return True
    return (info.st_dev, info.st_ino) == (device, inode)


class PlainFormatter(logging.Formatter):
    """``2025-11-24 14:02:11 INFO  message``, or ``<6>message`` for journald."""

    def __init__(self, *, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if self.journald:
            priority = _PRIORITY.get(record.levelno, 6)
            return "\n".join(f"<{priority}>{line}" for line in message.splitlines() or [""])
        stamp = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        return f"{stamp} {record.levelname:<5} {message}"


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }  # fmt: skip
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def make_handler(stream: IO[str], *, json_lines: bool = False) -> logging.Handler:
    """A handler writing the daemon's lines to ``stream`` in the fitting format."""
    handler = logging.StreamHandler(stream)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter(journald=under_journald(stream)))
    return handler
