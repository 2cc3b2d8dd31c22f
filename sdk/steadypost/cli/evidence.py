"""The evidence of an outage, as a creator can hand it to support: what, when, and nothing local.

:func:`gather` picks the posts a platform's failures touched (a failed
request, a wait, or a post left unconfirmed, waiting or failed) and sums them
up: how many, how many were confirmed later without being sent again, how many
were sent again once (the platform said it had not got them), and the outage
as this client saw it (the first and last failed answer, and what they were).

Nothing local leaves: a file is named by its name, never its folder; the
journal's path, lease owners (host and process) and any absolute path inside a
message are left out (:func:`scrub`). Secrets never reached the journal.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steadypost.models import JournalEvent, Post, PostState

_TROUBLED = (PostState.UNCONFIRMED, PostState.WAITING, PostState.FAILED)
_LOCAL_KEYS = frozenset({"owner", "previous_owner", "lease_ended", "path", "journal"})
# "vm:1717:53b6fb8abfae05da.d9f06d03" (a lease owner) and "steadypost process 1717 on host vm"
_OWNER = re.compile(r"\b[\w.-]+:\d{1,10}:[0-9a-f]{8,16}(?:\.[0-9a-f]{8})?\b")
_PROCESS = re.compile(r"(?:steadypost |the steadypost daemon )?\(?(?:process|pid) \d+"
                      r"(?: on host [\w.-]+)?\)?")  # fmt: skip
_ABSOLUTE = re.compile(r"(?<![\w:/])(?:/[^\s/'\"]+)+/([^\s/'\"]+)")


def scrub(text: str) -> str:
    """``text`` without lease owners, process ids, host names or folders of absolute paths."""
    text = _OWNER.sub("another steadypost process", text)
    text = _PROCESS.sub("another steadypost process", text)
    return _ABSOLUTE.sub(r"\1", text)


def failed(event: JournalEvent) -> bool:
    """A request that got no answer, or an error status."""
    status = event.data.get("status")
    return event.kind == "request" and (
        bool(event.data.get("error")) or (isinstance(status, int) and status >= 400))


_OUTAGE = frozenset({408, 423, 425, 429})


def outage_answer(event: JournalEvent) -> bool:
    """A failure of the platform (5xx, 429, 408, no answer), not a refusal of the request."""
    status = event.data.get("status")
    return failed(event) and (not isinstance(status, int) or status >= 500 or status in _OUTAGE)


def answer(event: JournalEvent) -> str:
    """What a request got: ``"503"``, ``"no answer (connection lost)"``."""
    status = event.data.get("status")
    if status:
        return str(status)
    error = str(event.data.get("error") or "no answer")
    short = error.split(": ", 1)[-1] if ": " in error else error
    return f"no answer ({short.split(' (')[0]})"


def affected(post: Post, events: Sequence[JournalEvent]) -> bool:
    """Whether anything went wrong for this post (a failed request, a wait, a bad state)."""
    if post.state in _TROUBLED:
        return True
    return any(e.kind in ("wait", "verify") or failed(e) for e in events)


def _went(events: Iterable[JournalEvent], src: str, dst: str) -> bool:
    return any(e.kind == "state" and e.data.get("from") == src and e.data.get("to") == dst
               for e in events)  # fmt: skip


@dataclass(frozen=True)
class Affected:
    """One post in the evidence, its events scrubbed."""

    post: Post
    events: tuple[JournalEvent, ...]

    @property
    def file(self) -> str:
        return os.path.basename(self.post.path)

    @property
    def label(self) -> str:
        """The file's name, with the platform and group of a post of a group."""
        post = self.post
        return f"{self.file} ({post.platform}, group {post.group})" if post.group else self.file

    @property
    def reposted(self) -> bool:
        """Sent again after the platform said it had not got it (unconfirmed -> queued)."""
        return _went(self.events, "unconfirmed", "queued")

    @property
    def confirmed_later(self) -> bool:
        """Unconfirmed once, then confirmed without being sent again."""
        return (self.post.state is PostState.CONFIRMED and not self.reposted
                and _went(self.events, "uploading", "unconfirmed"))  # fmt: skip


@dataclass(frozen=True)
class Window:
    """The outage as this client saw it: its first and last failed answer (5xx, 429, 408,
    no answer; a 401, 403 or 404 is a refusal of one request, not an outage)."""

    start: float
    end: float
    failed: int
    answers: Mapping[str, int]


@dataclass(frozen=True)
class Evidence:
    posts: tuple[Affected, ...]
    window: Window | None

    @property
    def confirmed_later(self) -> int:
        return sum(1 for a in self.posts if a.confirmed_later)

    @property
    def reposted(self) -> int:
        return sum(1 for a in self.posts if a.reposted)

    @property
    def states(self) -> Counter[str]:
        return Counter(a.post.state.value for a in self.posts)


def clean_event(event: JournalEvent) -> JournalEvent:
    """The event without local details: owners gone, paths cut to file names."""
    data = {k: (scrub(v) if isinstance(v, str) else v)
            for k, v in event.data.items() if k not in _LOCAL_KEYS}  # fmt: skip
    # (epoch seconds: JournalEvent keeps them exact, and shows them as a datetime)
    return JournalEvent(event.event_id, event.post_id, event.at_ts, event.kind,  # type: ignore[arg-type]
                        data)


def gather(posts: Iterable[tuple[Post, Sequence[JournalEvent]]]) -> Evidence:
    """The evidence of the affected posts among ``posts`` (each with its events)."""
    chosen = tuple(Affected(post, tuple(clean_event(e) for e in events))
                   for post, events in posts if affected(post, events))  # fmt: skip
    bad = [e for a in chosen for e in a.events if outage_answer(e)]
    window = None
    if bad:
        window = Window(min(e.at_ts for e in bad), max(e.at_ts for e in bad), len(bad),
                        dict(Counter(answer(e) for e in bad).most_common()))  # fmt: skip
    return Evidence(chosen, window)


def post_summary(item: Affected, why: str) -> dict[str, Any]:
    """One post's evidence as a JSON-ready object (file name only, no owner)."""
    from steadypost.cli.output import event_record, iso, post_record

    post, events = item.post, item.events
    requests = [e for e in events if e.kind == "request"]
    waits = [e for e in events if e.kind == "wait"]
    confirmed = [e.at for e in events if e.kind == "state" and e.data.get("to") == "confirmed"]
    record = post_record(post)
    record["file"] = item.file
    record["last_error"] = scrub(post.last_error) if post.last_error else None
    return {
        **record,
        "outcome": scrub(why),
        "confirmed_later_without_repost": item.confirmed_later,
        "reposted": item.reposted,
        "first_request_at": iso(requests[0].at) if requests else None,
        "last_activity_at": iso(events[-1].at) if events else None,
        "confirmed_at": iso(confirmed[-1]) if confirmed else None,
        "requests": len(requests),
        "failed_requests": sum(1 for e in requests if failed(e)),
        "server_answers": dict(Counter(
            str(e.data.get("status") or e.data.get("error") or "?") for e in requests)),
        "request_ids": [e.data["request_id"] for e in requests if e.data.get("request_id")],
        "waits": len(waits),
        "waited_s": round(sum(float(e.data.get("seconds", 0)) for e in waits), 3),
        "events": [event_record(e) for e in events],
    }


__all__ = ["Affected", "Evidence", "Window", "affected", "answer", "clean_event", "failed",
           "gather", "outage_answer", "post_summary", "scrub"]  # fmt: skip
