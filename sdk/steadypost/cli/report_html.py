"""``steadypost report --format html``: the evidence as one page a creator can send to support.

One self-contained file: the styles inline, the timeline drawn as inline SVG,
no script, no font, no image and no link to anything outside it (its content
security policy forbids loading any), so it opens the same anywhere, offline,
and shows nothing it does not contain.

At the top, the summary: how many posts the outage touched, how many were
confirmed later without being sent again, how many were sent again once, and
the outage window as this client saw it. Then one drawn timeline for every
post, on one time axis (UTC): each request as a tick coloured by its answer
(hover it for the time, the answer and the request id), each wait as a bar,
each change of state as a labelled diamond, the outage window shaded behind.
Last, each post's events as a table.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime, timezone

from steadypost.cli.evidence import Affected, Evidence, answer, failed
from steadypost.cli.output import event_summary, size
from steadypost.cli.term import countdown
from steadypost.models import JournalEvent

WIDTH = 1000
LABEL_W = 190
ROW_H = 46
AXIS_H = 34
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
          86400)  # fmt: skip
STATE_COLOURS = {"confirmed": "#1a7f37", "unconfirmed": "#b35900", "waiting": "#b35900",
                 "failed": "#cf222e", "queued": "#0969da", "uploading": "#0969da",
                 "cancelled": "#6e7781"}  # fmt: skip

CSS = """
:root { color-scheme: light; --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 28px 32px 48px; max-width: 1180px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 10px; }
h3 { font-size: 16px; margin: 26px 0 6px; }
.meta { color: var(--muted); margin: 0 0 20px; }
.summary { display: grid; grid-template-columns: repeat(3, 1fr) 2fr; gap: 12px; }
.figure { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.figure b { display: block; font-size: 30px; line-height: 1.1; }
.figure.window b { font-size: 19px; }
svg { width: 100%; height: auto; display: block; border: 1px solid var(--line);
      border-radius: 8px; }
svg text { font: 12px system-ui, sans-serif; fill: var(--ink); }
svg .tick text { fill: var(--muted); font-size: 11px; }
.legend { color: var(--muted); font-size: 13px; margin: 8px 0 0; }
.legend span { display: inline-block; margin-right: 16px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
            margin-right: 5px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.id, code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.state { font-weight: 600; }
footer { color: var(--muted); font-size: 12px; margin-top: 36px; }
@media print { body { padding: 0; } svg { break-inside: avoid; } }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def utc(ts: float, with_date: bool = False) -> str:
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def answer_colour(event: JournalEvent) -> str:
    status = event.data.get("status")
    if not isinstance(status, int):
        return "#6e7781"  # no answer
    if status < 300:
        return "#1a7f37"
    if status < 400:
        return "#0969da"
    if status in (408, 423, 425, 429) or status >= 500:
        return "#d4760a"
    return "#cf222e"


class Axis:
    """Seconds to x, and the ticks of one time axis for every post."""

    def __init__(self, start: float, end: float) -> None:
        span = max(end - start, 1.0)
        pad = span * 0.03
        self.start, self.end = start - pad, end + pad
        self.x0, self.x1 = LABEL_W, WIDTH - 16

    def x(self, ts: float) -> float:
        frac = (ts - self.start) / (self.end - self.start)
        return round(self.x0 + frac * (self.x1 - self.x0), 2)

    def ticks(self) -> list[float]:
        span = self.end - self.start
        step = next((s for s in _STEPS if span / s <= 8), math.ceil(span / 8 / 86400) * 86400)
        first = math.ceil(self.start / step) * step
        return [first + n * step for n in range(int((self.end - first) // step) + 1)]


def _span(events: Sequence[JournalEvent]) -> tuple[float, float]:
    starts = [e.at_ts for e in events]
    ends = [e.at_ts + float(e.data.get("seconds", 0)) for e in events if e.kind == "wait"]
    return min(starts), max(starts + ends)


def timeline_svg(evidence: Evidence) -> str:
    """Every post's requests, waits and state changes on one time axis (inline SVG)."""
    events = [e for a in evidence.posts for e in a.events]
    axis = Axis(*_span(events))
    height = AXIS_H + ROW_H * len(evidence.posts) + 14
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} '
           f'{height}" role="img" aria-label="Timeline of every affected post, UTC">']  # fmt: skip
    window = evidence.window
    if window is not None:
        x0, x1 = axis.x(window.start), axis.x(window.end)
        out.append(f'<rect class="outage" x="{x0}" y="{AXIS_H - 6}" width="{max(x1 - x0, 2)}" '
                   f'height="{height - AXIS_H}" fill="#cf222e" fill-opacity="0.07">'
                   f"<title>outage as seen here: {utc(window.start)} to {utc(window.end)} UTC"
                   "</title></rect>")  # fmt: skip
    out.append('<g class="axis">')
    ticks = axis.ticks()
    for n, ts in enumerate(ticks):
        x = axis.x(ts)
        label = utc(ts, with_date=n == 0)
        out.append(f'<g class="tick"><line x1="{x}" x2="{x}" y1="{AXIS_H - 8}" y2="{height - 8}" '
                   f'stroke="#d1d9e0" stroke-dasharray="2 3"/><text x="{x}" y="{AXIS_H - 14}" '
                   f'text-anchor="middle">{_e(label)}</text></g>')  # fmt: skip
    out.append(f'<text x="8" y="{AXIS_H - 14}" font-weight="600">UTC</text></g>')
    for row, item in enumerate(evidence.posts):
        out.append(_row(item, axis, AXIS_H + row * ROW_H))
    out.append("</svg>")
    return "\n".join(out)


def _row(item: Affected, axis: Axis, top: float) -> str:
    mid = top + ROW_H / 2
    state = item.post.state.value
    parts = [f'<g class="post-row" data-post="{_e(item.post.post_id)}">',
             f'<line x1="{axis.x0}" x2="{axis.x1}" y1="{mid}" y2="{mid}" stroke="#d1d9e0"/>',
             f'<text x="8" y="{mid - 3}" font-weight="600">{_e(_short(item.file, 26))}</text>',
             f'<text x="8" y="{mid + 13}" fill="{STATE_COLOURS.get(state, "#1f2328")}">'
             f"{_e(state)}</text>"]  # fmt: skip
    for e in item.events:
        x = axis.x(e.at_ts)
        when = utc(e.at_ts)
        if e.kind == "wait":
            w = max(axis.x(e.at_ts + float(e.data.get("seconds", 0))) - x, 1.5)
            parts.append(f'<rect class="wait" x="{x}" y="{mid - 5}" width="{round(w, 2)}" '
                         f'height="10" rx="2" fill="#d4760a" fill-opacity="0.22"><title>{when} '
                         f"{_e(event_summary(e))}</title></rect>")  # fmt: skip
    for e in item.events:
        x = axis.x(e.at_ts)
        when = utc(e.at_ts)
        if e.kind == "request":
            rid = e.data.get("request_id")
            tip = f"{when} {e.data.get('method')} → {answer(e)}" + (f", request id {rid}"
                                                                      if rid else "")  # fmt: skip
            parts.append(f'<line class="request" x1="{x}" x2="{x}" y1="{mid - 11}" '
                         f'y2="{mid + 11}" stroke="{answer_colour(e)}" stroke-width="'
                         f'{2.6 if failed(e) else 1.6}"><title>{_e(tip)}</title></line>')
        elif e.kind == "state":
            to = str(e.data.get("to"))
            colour = STATE_COLOURS.get(to, "#1f2328")
            parts.append(f'<path class="state-change" d="M{x} {mid - 7}l6 7-6 7-6-7z" '
                         f'fill="{colour}"><title>{when} {_e(event_summary(e))}</title></path>')
            if to in ("unconfirmed", "confirmed", "failed"):
                parts.append(f'<text x="{x}" y="{mid - 12}" text-anchor="middle" '
                             f'font-size="10" fill="{colour}">{_e(to)}</text>')  # fmt: skip
    parts.append("</g>")
    return "\n".join(parts)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _summary(evidence: Evidence) -> str:
    window = evidence.window
    if window is None:
        seen = "<b>none</b> no request failed"
    else:
        answers = ", ".join(f"{_e(k)} ×{v}" for k, v in window.answers.items())
        seen = (f"<b>{utc(window.start, True)} → {utc(window.end)} UTC</b>"
                f"{countdown(window.end - window.start)} long; {window.failed} failed "
                f"answers: {answers}")  # fmt: skip
    figures = [
        ("posts", len(evidence.posts), "posts affected"),
        ("confirmed-later", evidence.confirmed_later, "confirmed later without a re-post"),
        ("reposted", evidence.reposted, "re-posted once"),
    ]
    cells = [f'<div class="figure" id="{key}"><b>{n}</b>{_e(text)}</div>'
             for key, n, text in figures]  # fmt: skip
    cells.append(f'<div class="figure window" id="outage-window">{seen}'
                 "<br>the outage window as this client saw it</div>")
    return '<section class="summary" id="summary">' + "".join(cells) + "</section>"


def _table(item: Affected) -> str:
    rows = []
    for e in item.events:
        rid = e.data.get("request_id") or ""
        got = answer(e) if e.kind == "request" else ""
        rows.append(f"<tr><td class='t'>{utc(e.at_ts, True)}</td><td>{_e(e.kind)}</td>"
                    f"<td>{_e(got)}</td><td class='id'>{_e(rid)}</td>"
                    f"<td>{_e(event_summary(e))}</td></tr>")  # fmt: skip
    post = item.post
    state = post.state.value
    head = (f"<h3 id='post-{_e(post.post_id)}'>{_e(item.file)} · <span class='state' "
            f"style='color:{STATE_COLOURS.get(state, '#1f2328')}'>{_e(state)}</span></h3>"
            f"<p class='meta'>post <code>{_e(post.post_id)}</code> · {size(post.identity.size)} "
            f"· {_e(post.platform)}{_group(post.group)} · sha256 "
            f"<code>{_e(post.identity.sha256 or '-')}</code></p>")
    return (head + "<table><tr><th>time (UTC)</th><th>what</th><th>answer</th>"
            "<th>request id</th><th>detail</th></tr>" + "".join(rows) + "</table>")


def _group(group: str | None) -> str:
    return f" · group <code>{_e(group)}</code>" if group else ""


def render(evidence: Evidence, *, generated_at: float, since: str | None, version: str) -> str:
    """The whole page."""
    scope = f" since {_e(since)}" if since else ""
    body = [f"<header><h1>Outage evidence</h1><p class='meta'>Posts that the platform's "
            f"failures touched{scope}, from steadypost's journal. Generated "
            f"{utc(generated_at, True)} UTC by steadypost {_e(version)}. Times are UTC.</p>"
            "</header>", _summary(evidence)]  # fmt: skip
    if evidence.posts:
        body += ["<h2>Timeline</h2>", timeline_svg(evidence),
                 "<p class='legend'><span><i style='background:#1a7f37'></i>answered</span>"
                 "<span><i style='background:#d4760a'></i>busy or failing (5xx, 429)</span>"
                 "<span><i style='background:#cf222e'></i>refused (4xx)</span>"
                 "<span><i style='background:#6e7781'></i>no answer</span>"
                 "<span>bars: waits · diamonds: state changes · shaded: the outage</span></p>",
                 "<h2>Each post</h2>", *(_table(a) for a in evidence.posts)]  # fmt: skip
    else:
        body.append("<p>No post was affected.</p>")
    body.append("<footer>File names only: no folders, hosts or processes of this computer are "
                "in this report, and no tokens (steadypost never stores them).</footer>")
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">"
            f"<title>Outage evidence · steadypost</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")  # fmt: skip


__all__ = ["Axis", "render", "timeline_svg"]
