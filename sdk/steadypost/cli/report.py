"""``steadypost report``: the evidence of posts that a platform's failures touched.

For each affected post: what was attempted when, what the server answered
(statuses, errors, request ids), how long steadypost waited and why, and
what was finally confirmed; at the top, how many posts the outage touched,
how many were confirmed later without a re-post, how many were re-posted,
and the outage window as this client saw it. Formats: ``text`` for people
(the default on a terminal), ``html`` (one self-contained page with a drawn
timeline, to send to support), ``json`` (the default into a pipe or file) and
``csv`` (one row per event). Secrets never appear (the journal strips them
before it stores an event), and neither do local details: files are named by
their name, and lease owners (host and process) are left out.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from steadypost import __version__
from steadypost.cli.app import App
from steadypost.cli.evidence import Affected, Evidence, gather, post_summary
from steadypost.cli.options import common_options, pass_app
from steadypost.cli.output import event_record, event_summary, iso, stamp, why
from steadypost.cli.term import countdown

_AGO = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}
FORMATS = ["text", "html", "json", "csv"]
CSV_COLUMNS = [
    "post_id", "file", "final_state", "at", "kind", "method", "url", "status",
    "request_id", "error", "wait_s", "detail", "platform", "group",
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


def csv_rows(item: Affected) -> list[dict[str, Any]]:
    rows = []
    for e in item.events:
        d = e.data
        rows.append({
            "post_id": item.post.post_id, "file": item.file, "platform": item.post.platform,
            "group": item.post.group or "", "final_state": item.post.state.value,
            "at": iso(e.at), "kind": e.kind, "method": d.get("method", ""),
            "url": d.get("url", ""), "status": d.get("status", ""),
            "request_id": d.get("request_id", ""), "error": d.get("error", ""),
            "wait_s": d.get("seconds", "") if e.kind == "wait" else "",
            "detail": event_summary(e),
        })  # fmt: skip
    return rows


def as_text(evidence: Evidence, now: float) -> str:
    """The evidence for reading in a terminal: the summary, then each post's timeline."""
    lines = [f"{len(evidence.posts)} post(s) affected; {evidence.confirmed_later} confirmed "
             f"later without a re-post; {evidence.reposted} re-posted once"]  # fmt: skip
    window = evidence.window
    if window is not None:
        answers = ", ".join(f"{k} x{v}" for k, v in window.answers.items())
        lines.append(f"the outage as this client saw it: {stamp(window.start)} to "
                     f"{stamp(window.end)} ({countdown(window.end - window.start)}); "
                     f"{window.failed} failed answers: {answers}")  # fmt: skip
    for item in evidence.posts:
        lines += ["", f"{item.label}  {item.post.post_id}  {item.post.state.value}: "
                  f"{why(item.post, now)}"]  # fmt: skip
        lines += [f"  {stamp(e.at)}  {e.kind:<7}  {event_summary(e)}" for e in item.events]
    return "\n".join(lines) + "\n"


def _document(evidence: Evidence, now: float, start: float | None) -> dict[str, Any]:
    window = evidence.window
    return {
        "generated_at": iso(now), "since": iso(start),
        "summary": {
            "posts_affected": len(evidence.posts),
            "confirmed_later_without_repost": evidence.confirmed_later,
            "reposted_once": evidence.reposted,
            "states": dict(evidence.states),
            "outage_window": None if window is None else {
                "start": iso(window.start), "end": iso(window.end),
                "failed_answers": window.failed, "answers": dict(window.answers)},
        },
        "posts": [post_summary(item, why(item.post, now)) for item in evidence.posts],
    }  # fmt: skip


def _events_of(items: Sequence[Affected]) -> list[dict[str, Any]]:
    return [event_record(e) for item in items for e in item.events]


@click.command(short_help="Write the evidence of posts that hit trouble.")
@click.option("--since", metavar="DATE",
              help="Only posts active since then: 2025-11-01, 2025-11-01T14:00, or 7d, 12h, 30m.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text (for reading; the default on a terminal), html (one page to send, "
              "with a drawn timeline), json (the default into a pipe or file) or csv (one "
              "row per event).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the report to this file instead of stdout.")
@common_options
@pass_app
def report(app: App, since: str | None, fmt: str | None, output: Path | None) -> None:  # fmt: skip
    """Write the evidence of posts that hit trouble, to document an outage.

    A post is in the report when a request failed, steadypost had to wait,
    or the post is unconfirmed, waiting or failed. At the top: how many posts
    were affected, how many were confirmed later without a re-post, how many
    were re-posted once, and the outage window as this client saw it. For
    each post: every request with the server's answer and request id, every
    wait and its reason, each state change, and what was finally confirmed.
    Files are named by their name only; hosts and processes are left out.

    \b
    Examples:
      steadypost report
      steadypost report --since 2025-11-01 --format html -o outage.html
      steadypost report --since 2025-11-01 --format csv -o outage.csv
      steadypost report --since 7d --format json | jq '.posts[] | {file, state}'
    """
    now = app.now()
    start = parse_since(since, now) if since else None
    fmt = fmt or ("text" if output is None and app.out.is_terminal else "json")
    chosen = []
    for post in app.journal.list():
        if start is not None and post.updated_ts < start:
            continue
        chosen.append((post, app.journal.events(post.post_id)))
    evidence = gather(chosen)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for item in evidence.posts:
            writer.writerows(csv_rows(item))
        text = buffer.getvalue()
    elif fmt == "html":
        from steadypost.cli.report_html import render

        text = render(evidence, generated_at=now, since=since, version=__version__)
    elif fmt == "text":
        text = as_text(evidence, now)
    else:
        text = json.dumps(_document(evidence, now, start), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        app.out.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        app.note(f"wrote the evidence of {len(evidence.posts)} post(s) to {output}")
