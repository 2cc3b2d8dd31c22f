"""``steadypost report``: the evidence of posts that a platform's failures touched.

For each affected post: what was attempted when, what the server answered
(statuses, errors, request ids), how long steadypost waited and why, and
what was finally confirmed. JSON gives one document with every post and its
timeline; CSV gives one row per event, ready for a spreadsheet. Secrets never
appear: the journal strips them before it stores an event.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from steadypost import JournalEvent, Post, PostState
from steadypost.cli.app import App
from steadypost.cli.options import common_options, pass_app
from steadypost.cli.output import event_record, event_summary, iso, post_record, why

_TROUBLED = (PostState.UNCONFIRMED, PostState.WAITING, PostState.FAILED)
_AGO = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}
CSV_COLUMNS = [
    "post_id", "file", "final_state", "at", "kind", "method", "url", "status",
    "request_id", "error", "wait_s", "detail",
]  # fmt: skip


def parse_since(text: str, now: float) -> float:
    """Epoch seconds from ``2025-11-01``, ``2025-11-01T14:00`` (local time), ``7d``, ``12h``..."""
    match = _AGO.match(text)
    if match:
        return now - int(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date; write 2025-11-01, 2025-11-01T14:00, or 7d / 12h / 30m ago",
            param_hint="--since",
        ) from None


def _failed(event: JournalEvent) -> bool:
    status = event.data.get("status")
    return bool(event.data.get("error")) or (isinstance(status, int) and status >= 400)


def affected(post: Post, events: Sequence[JournalEvent]) -> bool:
    """Whether anything went wrong for this post (a failed request, a wait, a bad state)."""
    if post.state in _TROUBLED:
        return True
    return any(
        e.kind in ("wait", "verify") or (e.kind == "request" and _failed(e)) for e in events
    )


def summary(post: Post, events: Sequence[JournalEvent], now: float) -> dict[str, Any]:
    """One post's evidence as a JSON object."""
    requests = [e for e in events if e.kind == "request"]
    waits = [e for e in events if e.kind == "wait"]
    answers = Counter(str(e.data.get("status") or e.data.get("error") or "?") for e in requests)
    confirmed = [e.at for e in events if e.kind == "state" and e.data.get("to") == "confirmed"]
    return {
        **post_record(post),
        "outcome": why(post, now),
        "first_request_at": iso(requests[0].at) if requests else None,
        "last_activity_at": iso(events[-1].at) if events else None,
        "confirmed_at": iso(confirmed[-1]) if confirmed else None,
        "requests": len(requests),
        "failed_requests": sum(1 for e in requests if _failed(e)),
        "server_answers": dict(answers),
        "request_ids": [e.data["request_id"] for e in requests if e.data.get("request_id")],
        "waits": len(waits),
        "waited_s": round(sum(float(e.data.get("seconds", 0)) for e in waits), 3),
        "events": [event_record(e) for e in events],
    }


def csv_rows(post: Post, events: Sequence[JournalEvent]) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        d = e.data
        rows.append({
            "post_id": post.post_id, "file": post.path, "final_state": post.state.value,
            "at": iso(e.at), "kind": e.kind, "method": d.get("method", ""),
            "url": d.get("url", ""), "status": d.get("status", ""),
            "request_id": d.get("request_id", ""), "error": d.get("error", ""),
            "wait_s": d.get("seconds", "") if e.kind == "wait" else "",
            "detail": event_summary(e),
        })  # fmt: skip
    return rows


@click.command(short_help="Write the evidence of posts that hit trouble.")
@click.option("--since", metavar="DATE",
              help="Only posts active since then: 2025-11-01, 2025-11-01T14:00, or 7d, 12h, 30m.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True, help="JSON (one document) or CSV (one row per event).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the report to this file instead of stdout.")
@common_options
@pass_app
def report(app: App, since: str | None, fmt: str, output: Path | None) -> None:  # fmt: skip
    """Write the evidence of posts that hit trouble, to document an outage.

    A post is in the report when a request failed, steadypost had to wait,
    or the post is unconfirmed, waiting or failed. For each: every request
    with the server's answer and request id, every wait and its reason, each
    state change, and what was finally confirmed, with UTC timestamps.

    \b
    Examples:
      steadypost report
      steadypost report --since 2025-11-01 --format csv -o outage.csv
      steadypost report --since 7d | jq '.posts[] | {file, state, server_answers}'
    """
    now = app.now()
    start = parse_since(since, now) if since else None
    chosen = []
    for post in app.journal.list():
        if start is not None and post.updated_ts < start:
            continue
        events = app.journal.events(post.post_id)
        if affected(post, events):
            chosen.append((post, events))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for post, events in chosen:
            writer.writerows(csv_rows(post, events))
        text = buffer.getvalue()
    else:
        document = {
            "generated_at": iso(now), "since": iso(start), "journal": str(app.journal.path),
            "posts": [summary(post, events, now) for post, events in chosen],
        }  # fmt: skip
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        app.out.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        app.note(f"wrote the evidence of {len(chosen)} post(s) to {output}")
