"""Plain lines on stdout or stderr: colour on a terminal only, cut to its width.

The commands people run most (``list``, ``show``, ``status``) print through
:class:`Term`, which needs only the standard library and click, so they start
fast; rich is loaded for the progress bars of ``upload`` and ``resume`` only.

Colour follows the usual rules: only on a terminal, never with ``NO_COLOR``
set (any value), always with ``FORCE_COLOR``. The width is ``$COLUMNS`` when
set, else the terminal's; a stream that is not a terminal (a pipe, a file)
gets whole lines, so scripts never see a cut value.
"""

from __future__ import annotations

import math
import os
import sys
from typing import IO

import click

#: The styles the CLI uses, as ``click.style`` keywords.
STYLES: dict[str, dict[str, object]] = {
    "green": {"fg": "green"},
    "yellow": {"fg": "yellow"},
    "cyan": {"fg": "cyan"},
    "red": {"fg": "red"},
    "bold red": {"fg": "red", "bold": True},
    "bold": {"bold": True},
    "dim": {"dim": True},
}
ELLIPSIS = "…"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Term:
    """Writes lines to ``sys.stdout`` (or ``sys.stderr``), looked up at each write."""

    def __init__(self, *, stderr: bool = False, quiet: bool = False) -> None:
        self.stderr = stderr
        self.quiet = quiet
        """Drop every line (``-q`` on stderr); results on stdout are never dropped."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr if self.stderr else sys.stdout

    @property
    def is_terminal(self) -> bool:
        return _is_terminal(self.stream)

    @property
    def color(self) -> bool:
        if os.environ.get("NO_COLOR"):
            return False
        return bool(os.environ.get("FORCE_COLOR")) or self.is_terminal

    @property
    def width(self) -> int | None:
        """Columns to fit lines in (``None``: no limit, the stream is not a terminal)."""
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        if not self.is_terminal:
            return None
        try:  # (not shutil's: it loads the compression modules)
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return 80

    def style(self, text: str, style: str | None) -> str:
        """``text`` in ``style`` (see :data:`STYLES`) when colour is on."""
        if not style or not self.color:
            return text
        return click.style(text, **STYLES[style])  # type: ignore[arg-type]

    def line(
        self, text: str = "", *, style: str | None = None, cut: bool = False, force: bool = False
    ) -> None:
        """One line; ``cut``: cut to the width (if any) first; ``force``: even if quiet."""
        self.write(self.style(fit(text, self.width) if cut else text, style) + "\n", force=force)

    def write(self, text: str, *, force: bool = False) -> None:
        """``text`` as it is (JSON, CSV, a line already styled and fitted)."""
        if self.quiet and not force:
            return
        stream = self.stream
        stream.write(text)
        stream.flush()


def countdown(left: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 05 min``: whole seconds, rounded up (every countdown:
    the bars', the log's, the notes')."""
    total = max(0, math.ceil(left))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def fit(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` characters with an ellipsis (``None``: as it is)."""
    if width is None or len(text) <= width:
        return text
    return text[: max(0, width - 1)] + ELLIPSIS


__all__ = ["ELLIPSIS", "STYLES", "Term", "countdown", "fit"]
