"""How posts and events are shown: aligned text for people, JSON for programs.

Results go to stdout, everything else (progress, notes, warnings) to stderr,
both through :class:`~steadypost.cli.term.Term` (colour only on a terminal,
never with ``NO_COLOR``). What a line says about time is computed when it is
printed: "next try in 3 min", "42% on the server", never a countdown frozen
in an error message when the error happened. Upload URLs pass through the
journal's ``redact_url`` before they are shown, so a signed URL never prints
its signature.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from steadypost.cli.term import Term, fit
from steadypost.journal.redact import redact_url
from steadypost.models import JournalEvent, Post, PostState

if TYPE_CHECKING:
    from rich.console import Console

STATE_STYLE = {
    PostState.CONFIRMED: "green",
    PostState.UNCONFIRMED: "yellow",
    PostState.WAITING: "yellow",
    PostState.QUEUED: "cyan",
    PostState.UPLOADING: "cyan",
    PostState.FAILED: "bold red",
    PostState.CANCELLED: "dim",
}
_STATE_WIDTH = max(len(s.value) for s in PostState)
Moment = datetime | float

# "host is recovering: circuit open, next probe in 26 s" -> "circuit open"
_RECOVERING = re.compile(r"^\S+ is recovering: (.*?)(?:[,;] next (?:probe|attempt|try|look))?"
                         r"(?: in \d+ s)?$")  # fmt: skip
_GAVE_UP = re.compile(r"^gave up after \d+ attempt\(s\): ")
# a countdown frozen into an error message when it was journaled: ", retrying in 42 s"
_FROZEN = re.compile(r"(?:[,;]? (?:next \w+|retrying|retry|try again))? in \d+(?:\.\d+)? ?s\b")


def make_console(*, stderr: bool) -> Console:
    """A rich console (progress bars) that never wraps or highlights on its own."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


# --- values ----------------------------------------------------------------------------


def _ts(moment: Moment) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def iso(moment: Moment | None) -> str | None:
    """UTC ISO 8601 with a ``Z`` (``2025-11-24T14:02:11Z``), for JSON and reports."""
    if moment is None:
        return None
    text = datetime.fromtimestamp(_ts(moment), tz=timezone.utc).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def when(moment: Moment, now: float) -> str:
    """Local ``HH:MM``, with the date in front when it is not today."""
    at, today = datetime.fromtimestamp(_ts(moment)), datetime.fromtimestamp(now)
    if at.date() == today.date():
        return at.strftime("%H:%M")
    return at.strftime("%Y-%m-%d %H:%M")


def stamp(moment: Moment) -> str:
    """Local ``YYYY-MM-DD HH:MM:SS`` for timelines."""
    return datetime.fromtimestamp(_ts(moment)).strftime("%Y-%m-%d %H:%M:%S")


def until(moment: Moment, now: float) -> str:
    """How far off ``moment`` is, read at ``now``: ``in 42 s``, ``in 3 min``, ``now``.

    Minutes are rounded up and seconds dropped past a minute ("in 3 min" for 2 min
    10 s): a list is read for a while, a bar's countdown (:func:`countdown`) is live.
    """
    left = _ts(moment) - now
    if left <= 0.5:
        return "now"
    if left < 60:
        return f"in {math.ceil(left)} s"
    if left < 3600:
        return f"in {math.ceil(left / 60)} min"
    hours, minutes = divmod(math.ceil(left / 60), 60)
    return f"in {hours} h {minutes:02d} min" if minutes else f"in {hours} h"


def size(n: int) -> str:
    """``512 B``, ``250.0 KiB``, ``24.0 MiB``, ``1.5 GiB``."""
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def seconds(value: float) -> str:
    """``1.1 s``, ``120 s``."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def share(post: Post) -> int:
    """Whole percent of the file the server holds (its journaled offset)."""
    total = post.identity.size
    if total <= 0:
        return 100 if post.state is PostState.CONFIRMED else 0
    if post.state is PostState.CONFIRMED:
        return 100
    return min(100, post.offset * 100 // total)


def reason_of(error: str | None) -> str:
    """An error as journaled, without a countdown frozen in it ("in 42 s")."""
    text = (error or "").strip()
    match = _RECOVERING.match(text)
    if match:
        return match.group(1)
    return _FROZEN.sub("", _GAVE_UP.sub("", text)).strip(" ,;")


# --- posts -----------------------------------------------------------------------------


def post_record(post: Post) -> dict[str, Any]:
    """A post as a JSON object (the ``--json`` output of every command)."""
    return {
        "post_id": post.post_id,
        "state": post.state.value,
        "file": post.path,
        "bytes": post.identity.size,
        "offset": post.offset,
        "upload_url": redact_url(post.upload_url) if post.upload_url else None,
        "endpoint": redact_url(post.endpoint),
        "platform": post.platform,
        "group": post.group,
        "attempts": post.attempts,
        "next_attempt_at": iso(post.next_attempt_at),
        "last_error": post.last_error,
        "sha256": post.identity.sha256,
        "metadata": dict(post.metadata),
        "created_at": iso(post.created_at),
        "updated_at": iso(post.updated_at),
    }


def _next(post: Post, now: float) -> str | None:
    at = post.next_attempt_ts
    if at is None:
        return None
    left = until(at, now)
    return left if left == "now" else f"{left}, at {when(at, now)}"


def why(post: Post, now: float) -> str:
    """One short line saying what a post's state means and what happens next, as of ``now``."""
    error = reason_of(post.last_error)
    later = _next(post, now)
    held = f"{share(post)}% on the server"
    if post.state is PostState.CONFIRMED:
        return f"{size(post.identity.size)} on the server"
    if post.state is PostState.UNCONFIRMED:
        because = error or "no answer after the last byte"
        return f"{because}; it may already be live; checked {later or 'at the next verify'}"
    if post.state is PostState.WAITING:
        reason = f"{error}; " if error else ""
        return f"{reason}{held}; next try {later or 'once resumed'} (steadypost resume)"
    if post.state is PostState.QUEUED:
        return "not started yet (steadypost resume)"
    if post.state is PostState.UPLOADING:
        if (post.lease_expires_ts or 0.0) <= now:  # its uploader is gone, or stopped long ago
            return f"interrupted at byte {post.offset:,} ({held}); steadypost resume goes on"
        from steadypost.journal.owners import describe_owner

        return f"{held}, being uploaded by {describe_owner(post.lease_owner)}"
    if post.state is PostState.FAILED:
        return error or "failed"
    return "cancelled"


def brief(post: Post, now: float) -> str:
    """:func:`why` for a table row: what comes next first, no hints (``list``)."""
    error = reason_of(post.last_error)
    later = _next(post, now)
    if post.state is PostState.WAITING:
        return f"next try {later or 'once resumed'}" + (f": {error}" if error else "")
    if post.state is PostState.UNCONFIRMED:
        return f"checked {later or 'at the next verify'}: it may already be live"
    if post.state is PostState.QUEUED:
        return "not started yet"
    if post.state is PostState.UPLOADING and (post.lease_expires_ts or 0.0) <= now:
        return "interrupted; resume goes on"
    return why(post, now)


def file_label(post: Post) -> str:
    """The file's name, and the platform for a post of a group: ``clip.mp4 (youtube)``."""
    name = os.path.basename(post.path)
    return f"{name} ({post.platform})" if post.group else name


def post_line(term: Term, post: Post, now: float) -> str:
    """``confirmed    clip.mp4  01J...  24.0 MiB on the server`` (styled for ``term``)."""
    state = term.style(f"{post.state.value:<{_STATE_WIDTH}}", STATE_STYLE[post.state])
    return f"{state}  {file_label(post)}  {post.post_id}  {why(post, now)}"


def print_posts(term: Term, posts: Iterable[Post], *, as_json: bool, now: float) -> None:
    """One line per post on ``term`` (stdout): text, or one JSON object per line."""
    for post in posts:
        if as_json:
            print_json(term, post_record(post))
        else:
            term.line(post_line(term, post, now))


def print_json(term: Term, value: Mapping[str, Any]) -> None:
    """One compact JSON object on its own line."""
    term.write(json.dumps(value, ensure_ascii=False) + "\n")


def table(
    term: Term, header: Sequence[str], rows: Iterable[Sequence[str]],
    styles: Callable[[Sequence[str]], Sequence[str | None]] | None = None,
    *, shrink: Sequence[int] = (), keep_last: int | None = None,
) -> None:  # fmt: skip
    """Left-aligned columns separated by two spaces; the last one is not padded.

    On a terminal the lines fit its width: the columns in ``shrink`` (indexes) are
    cut first, with an ellipsis in the middle, down to 12 characters, while the last
    column has more than ``keep_last`` characters to show; then the last column is
    cut at the end.
    """
    all_rows = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    width = term.width
    if width is not None:
        last = widths[-1] if keep_last is None else min(widths[-1], keep_last)
        over = sum(widths[:-1]) + last + 2 * (len(widths) - 1) - width
        for i in shrink:
            if over <= 0:
                break
            cut = min(over, max(0, widths[i] - max(12, len(header[i]))))
            widths[i] -= cut
            over -= cut
    for n, row in enumerate(all_rows):
        style = [None] * len(row) if n == 0 or styles is None else list(styles(row))
        cells = []
        for i, cell in enumerate(row):
            text = _middle(cell, widths[i])
            if i < len(row) - 1:
                text = text.ljust(widths[i])
            cells.append((text, style[i]))
        plain = "  ".join(text for text, _ in cells).rstrip()
        fitted = fit(plain, width)
        out, used = [], 0
        for text, cell_style in cells:  # style the cells that fit, in place
            piece = fitted[used : used + len(text)]
            out.append(term.style(piece, "bold" if n == 0 else cell_style))
            used += len(text) + 2
            if used > len(fitted):
                break
        term.write("  ".join(out).rstrip() + "\n")


def _middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` with an ellipsis in the middle (file names keep their end)."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2 :]


# --- events ----------------------------------------------------------------------------


def event_summary(event: JournalEvent) -> str:
    """A one-line description of a journal event."""
    d = event.data
    if event.kind == "state":
        text = f"{d.get('from') or 'new'} -> {d.get('to')}"
        check = f"the check said {d['check']}" if d.get("check") else None
        detail = (d.get("reason") or d.get("error") or d.get("publish_error")
                  or d.get("last_error") or check)  # fmt: skip
        return f"{text}: {detail}" if detail else text
    if event.kind == "request":
        answer = d.get("status") or "no answer"
        text = f"{d.get('method')} {d.get('url')} -> {answer}"
        if d.get("error"):
            error = str(d["error"]).removeprefix(f"{d.get('method')} {d.get('url')}: ")
            text += f" ({error})"
        if d.get("body_bytes"):
            text += f", {d['body_bytes']:,} bytes sent"
        if d.get("elapsed_ms") is not None:
            text += f", {d['elapsed_ms']} ms"
        if d.get("request_id"):
            text += f", request id {d['request_id']}"
        return text
    if event.kind == "wait":
        return f"waited {seconds(float(d.get('seconds', 0)))}: {d.get('reason', '')}"
    if event.kind == "note" and "message" in d:
        return str(d["message"])
    return ", ".join(f"{k}={v}" for k, v in d.items() if k != "owner")


def event_record(event: JournalEvent) -> dict[str, Any]:
    return {"at": iso(event.at), "kind": event.kind, **dict(event.data)}


def print_timeline(term: Term, events: Iterable[JournalEvent]) -> None:
    for event in events:
        term.line(f"  {stamp(event.at)}  {event.kind:<7}  {event_summary(event)}", cut=True)


def print_post_details(term: Term, post: Post, now: float) -> None:
    """The ``show`` view of one post (without its timeline), as of ``now``."""
    total = post.identity.size
    fields = [
        ("post", post.post_id),
        ("state", post.state.value),
        ("file", post.path),
        ("size", f"{size(total)} ({total:,} bytes)"),
        ("server has", f"{share(post)}% ({post.offset:,} of {total:,} bytes)"),
        ("platform", post.platform),
        ("endpoint", redact_url(post.endpoint)),
        ("upload url", redact_url(post.upload_url) if post.upload_url else "-"),
        ("attempts", str(post.attempts)),
        ("status", why(post, now)),
    ]
    if post.group:
        fields.append(("group", f"{post.group} (steadypost list --group {post.group})"))
    if post.metadata:
        fields.append(("metadata", ", ".join(f"{k}={v}" for k, v in post.metadata.items())))
    for name, value in fields:
        style = STATE_STYLE[post.state] if name == "state" else None
        term.line(f"{name:>10}  {term.style(value, style)}")
