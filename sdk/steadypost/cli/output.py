"""How posts and events are shown: aligned text for people, JSON for programs.

Results go to stdout, everything else (progress, notes, warnings) to stderr.
Colour comes from rich, which turns it off when the stream is not a terminal
and when ``NO_COLOR`` is set. Upload URLs pass through the journal's
``redact_url`` before they are shown, so a signed URL never prints its
signature.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.markup import escape

from steadypost import JournalEvent, Post, PostState
from steadypost.journal import describe_owner, redact_url

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


def make_console(*, stderr: bool) -> Console:
    """A console on stderr or stdout that never wraps or highlights on its own."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


# --- values ----------------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with a ``Z`` (``2025-11-24T14:02:11Z``), for JSON and reports."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def when(ts: float, now: float) -> str:
    """Local ``HH:MM``, with the date in front when it is not today."""
    moment, today = datetime.fromtimestamp(ts), datetime.fromtimestamp(now)
    if moment.date() == today.date():
        return moment.strftime("%H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


def stamp(ts: float) -> str:
    """Local ``YYYY-MM-DD HH:MM:SS`` for timelines."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def size(n: int) -> str:
    """``512 B``, ``250.0 KiB``, ``24.0 MiB``, ``1.5 GiB``."""
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def seconds(value: float) -> str:
    """``1.1 s``, ``120 s``."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


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
        "attempts": post.attempts,
        "next_attempt_at": iso(post.next_attempt_at),
        "last_error": post.last_error,
        "sha256": post.identity.sha256,
        "metadata": dict(post.metadata),
        "created_at": iso(post.created_at),
        "updated_at": iso(post.updated_at),
    }


def why(post: Post, now: float) -> str:
    """One short line saying what a post's state means and what happens next."""
    error = post.last_error
    later = when(post.next_attempt_at, now) if post.next_attempt_at is not None else None
    if post.state is PostState.CONFIRMED:
        return f"{size(post.identity.size)} on the server"
    if post.state is PostState.UNCONFIRMED:
        because = error or "no answer after the last byte"
        return f"{because}; it may already be live (checked at {later or 'the next verify'})"
    if post.state is PostState.WAITING:
        reason = f"{error}; " if error else ""
        return f"{reason}next try at {later or 'once resumed'} (steadypost resume)"
    if post.state is PostState.QUEUED:
        return "not started yet (steadypost resume)"
    if post.state is PostState.UPLOADING:
        if (post.lease_expires_at or 0.0) <= now:  # its uploader is gone, or stopped long ago
            return f"interrupted at byte {post.offset:,}; steadypost resume goes on"
        return f"being uploaded by {describe_owner(post.lease_owner)}"
    if post.state is PostState.FAILED:
        return error or "failed"
    return "cancelled"


def state_cell(state: PostState, *, width: int = _STATE_WIDTH) -> str:
    return f"[{STATE_STYLE[state]}]{state.value:<{width}}[/]"


def post_line(post: Post, now: float) -> str:
    """``confirmed    clip.mp4  01J...  24.0 MiB on the server`` (rich markup)."""
    name = escape(os.path.basename(post.path))
    return f"{state_cell(post.state)}  {name}  {post.post_id}  {escape(why(post, now))}"


def print_posts(console: Console, posts: Iterable[Post], *, as_json: bool, now: float) -> None:
    """One line per post on ``console`` (stdout): text, or one JSON object per line."""
    for post in posts:
        if as_json:
            print_json(console, post_record(post))
        else:
            console.print(post_line(post, now))


def print_json(console: Console, value: Mapping[str, Any]) -> None:
    """One compact JSON object on its own line, without any markup processing."""
    console.out(json.dumps(value, ensure_ascii=False), highlight=False)


def table(console: Console, header: Sequence[str], rows: Iterable[Sequence[str]],
          styles: Callable[[Sequence[str]], Sequence[str | None]] | None = None) -> None:
    """Left-aligned columns separated by two spaces; the last one is not padded."""
    all_rows = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header) - 1)]
    for n, row in enumerate(all_rows):
        style = [None] * len(row) if n == 0 or styles is None else list(styles(row))
        cells = []
        for i, cell in enumerate(row):
            text = escape(cell.ljust(widths[i]) if i < len(widths) else cell)
            cells.append(f"[{style[i]}]{text}[/]" if style[i] else text)
        console.print("  ".join(cells).rstrip(), style="bold" if n == 0 else None)


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


def print_timeline(console: Console, events: Iterable[JournalEvent]) -> None:
    for event in events:
        console.print(f"  {stamp(event.at)}  {event.kind:<7}  {escape(event_summary(event))}")


def print_post_details(console: Console, post: Post, now: float) -> None:
    """The ``show`` view of one post (without its timeline)."""
    fields = [
        ("post", post.post_id),
        ("state", post.state.value),
        ("file", post.path),
        ("size", f"{size(post.identity.size)} ({post.identity.size:,} bytes)"),
        ("server has", f"{post.offset:,} bytes"),
        ("endpoint", redact_url(post.endpoint)),
        ("upload url", redact_url(post.upload_url) if post.upload_url else "-"),
        ("attempts", str(post.attempts)),
        ("status", why(post, now)),
    ]
    if post.metadata:
        fields.append(("metadata", ", ".join(f"{k}={v}" for k, v in post.metadata.items())))
    for name, value in fields:
        style = STATE_STYLE[post.state] if name == "state" else None
        text = escape(value)
        console.print(f"{name:>10}  {f'[{style}]{text}[/]' if style else text}")
