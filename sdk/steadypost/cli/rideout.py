"""Riding out an outage in the foreground: what ``upload`` and ``resume`` do while a post waits.

An upload run ends with the post ``waiting`` when the platform cannot take it now: the
host's circuit breaker opened, the retry budget ran out, the server asked for time, the
retries of the run were spent. A script wants that at once (``--no-wait``: exit 4, and
``steadypost resume`` or the daemon goes on). A creator at a terminal wants the command to
keep going, so :class:`RideOut` sleeps until the post's ``next_attempt_at`` with a live
countdown ("platform recovering: circuit open, next try in 42 s") and then runs the upload
again, until the post settles (confirmed, unconfirmed, failed, cancelled) or
``--wait-up-to`` has passed without progress.

The pace is the uploader's, never the command's: a post turned away by its host's guard
comes back with ``next_attempt_at`` = the host's next time (the breaker's next probe), and
a round that starts before the host will take a request is deferred again without sending
anything. Riding out an outage therefore sends the breaker's spaced probes and nothing
more. Each round's retry deadline (``RetryPolicy.deadline_s``) ends with the command's, so
no run outlasts ``--wait-up-to`` either.

"Without progress": the wait counts from the start of the command, and starts again each
time the server takes bytes or a post settles. A big file on a slow link is never cut off
while its bytes flow, and the next file of the command gets the whole wait again; an outage
that outlasts it leaves the posts waiting in the journal, not lost.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import click

from steadypost import Post, PostState, Progress, ProgressKind, RetryPolicy, Uploader
from steadypost.cli.app import App
from steadypost.cli.exitcodes import ExitCode
from steadypost.cli.output import when
from steadypost.cli.progress import Tracker, span
from steadypost.drivers.observers import ProgressCallback

#: The shortest pause between two rounds, whatever ``next_attempt_at`` says (no busy loop).
MIN_ROUND_S = 1.0


class RideOut:
    """Uploads posts one after the other, waiting out their platform's recovery.

    ``wait_s`` is ``--wait-up-to`` in seconds; ``0`` (``--no-wait``) makes one upload run
    per post with the uploader's own retry policy, exactly as before riding out existed.
    """

    def __init__(self, app: App, wait_s: float) -> None:
        self.app = app
        self.wait_s = max(0.0, wait_s)
        self.moved = app.now()
        """The start of the command, or the last time a server took bytes or a post settled."""
        base = app.runtime.uploader_options.get("retry")
        self.base = base if isinstance(base, RetryPolicy) else RetryPolicy()
        self._told = False

    @classmethod
    def from_options(cls, app: App, *, wait_up_to: float, no_wait: bool) -> RideOut:
        return cls(app, 0.0 if no_wait else wait_up_to)

    @property
    def waits(self) -> bool:
        return self.wait_s > 0

    @property
    def deadline(self) -> float:
        """When the command stops waiting (moves on while there is progress)."""
        return self.moved + self.wait_s

    def rides(self, post: Post) -> bool:
        """Whether the command waits for ``post``'s next try (it falls before the deadline)."""
        return (
            self.waits
            and post.state is PostState.WAITING
            and post.next_attempt_ts is not None
            and post.next_attempt_ts < self.deadline
        )

    def upload(
        self, uploader: Uploader, post: Post, *, chunk_size: int | None, tracker: Tracker,
        wait_first: bool = False,
    ) -> Post:  # fmt: skip
        """Upload ``post`` until it settles or the wait is over; the post as journaled then.

        ``wait_first``: ``post`` is waiting for a later time (``resume``): wait for it first.
        """
        on_progress = self._watch(tracker, post.offset)
        at = post.next_attempt_ts if wait_first and self.rides(post) else None
        while True:
            if at is not None:
                self._wait(tracker, post, at)
                if self.app.stopped:  # Ctrl-C during -j: the post stays as journaled
                    return self.app.journal.get(post.post_id)
            self._bound(uploader)
            post = uploader.upload_post(post.post_id, chunk_size=chunk_size,
                                        on_progress=on_progress)  # fmt: skip
            if post.state.finished or post.state is PostState.UNCONFIRMED:
                self.moved = max(self.moved, self.app.now())
            at = max(post.next_attempt_ts or 0.0, self.app.now() + MIN_ROUND_S)
            if not self.rides(post) or at >= self.deadline:
                self._gave_up(tracker, post)
                return post

    def _watch(self, tracker: Tracker, offset: int) -> ProgressCallback:
        """``tracker``, noting the time whenever the server's offset moves past ``offset``."""
        acknowledged = offset

        def on_progress(p: Progress) -> None:
            nonlocal acknowledged
            if p.kind is ProgressKind.BYTES and p.acknowledged > acknowledged:
                acknowledged = p.acknowledged
                self.moved = max(self.moved, self.app.now())
            tracker(p)

        return on_progress

    def _bound(self, uploader: Uploader) -> None:
        """Give the next run a retry deadline that ends with the command's wait."""
        if not self.waits:
            return
        left = max(0.0, self.deadline - self.app.now())
        own = self.base.deadline_s
        deadline_s = left if own is None else min(own, left)
        uploader.retry_policy = replace(self.base, deadline_s=deadline_s)

    def _wait(self, tracker: Tracker, post: Post, at: float) -> None:
        now = self.app.now()
        if at <= now:
            return
        tracker.recovering(post, at)
        if not self._told:
            self._told = True
            self.app.note(
                f"steadypost keeps trying for up to {span(self.wait_s)} without progress "
                "(--wait-up-to); Ctrl-C stops and keeps the post for `steadypost resume`"
            )
        self.app.sleep(at - now)

    def _gave_up(self, tracker: Tracker, post: Post) -> None:
        if not self.waits or post.state is not PostState.WAITING:
            return
        now = self.app.now()
        later = when(post.next_attempt_at, now) if post.next_attempt_at else "later"
        tracker.display.note(
            f"{tracker.label}: stopped waiting: the next try ({later}) would come after "
            f"{span(self.wait_s)} without progress (--wait-up-to). The post waits in the "
            f"journal with {post.offset:,} bytes on the server; `steadypost resume` or the "
            "daemon goes on"
        )


def interrupted(
    app: App, started: Sequence[Post], *, as_json: bool, after: str = "",
    headers_for: Callable[[Post], Mapping[str, str]] | None = None,
) -> None:  # fmt: skip
    """Ctrl-C: print the posts as journaled, say where each unfinished one stands, exit 130.

    Where it stands is the server's own figure, asked just now (one quick tus ``HEAD``
    with ``headers_for(post)``): a chunk cut short leaves its first bytes on the server,
    more than the journal's last checkpoint. When the server cannot be asked, the
    journal's figure is given, and said to be that. ``after`` is a last note (the files
    not started).
    """
    saved = [app.journal.get(post.post_id) for post in started]
    app.print_posts(saved, as_json=as_json)
    for post in saved:
        if post.state.finished or post.state is PostState.UNCONFIRMED:
            continue
        name, total = os.path.basename(post.path), post.identity.size
        held = app.ask_offset(post, headers_for(post)) if headers_for is not None else None
        if held is not None:
            where = (f"the server holds {held:,} of {total:,} bytes ({held * 100 // max(total, 1)}"
                     "%, it said so just now)")  # fmt: skip
        else:
            where = (f"the server had acknowledged {post.offset:,} of {total:,} bytes at the "
                     "last checkpoint (it may hold more; it could not be asked now)")  # fmt: skip
        app.note(f"\ninterrupted: post {post.post_id} ({name}) is saved; {where}. "
                 "`steadypost resume` (or the daemon) goes on from the server's offset")
    if after:
        app.note(after)
    raise click.exceptions.Exit(ExitCode.INTERRUPTED)
