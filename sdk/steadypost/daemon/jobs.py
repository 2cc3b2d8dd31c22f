"""One upload or one verification that the daemon runs in a worker thread; signals.

Why threads (one :class:`~steadypost.Uploader` per running post, all sharing
one :class:`~steadypost.Journal`) rather than asyncio: the sync uploader is
the SDK's most exercised driver; every chunk ends in a journal commit and a
file read, which block, and in threads those overlap instead of stalling
every other upload; and the main thread stays free for signals. The journal
is thread-safe, and concurrency is small (2 by default).

A :class:`Job` is made by the loop (:mod:`~steadypost.daemon.runner`) for a
post it claimed (an upload, under the claim's lease owner) or one whose
check is due. Its thread runs it with its own :class:`~steadypost.Uploader`
and hands the result (the post as it ended, or the exception) to ``done``,
which puts it in the loop's queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from steadypost.client import Uploader
from steadypost.journal import Journal
from steadypost.models import Post

log = logging.getLogger("steadypost.daemon")


@dataclass
class Job:
    """An upload (``kind="upload"``) or a check (``"check"``) of one post."""

    kind: str
    post: Post
    uploader: Uploader
    chunk_size: int | None = None

    def announce(self) -> None:
        """The log line of its start."""
        post, name = self.post, os.path.basename(self.post.path)
        extra = {"post_id": post.post_id, "file": name}
        if self.kind == "upload":
            start = f", from byte {post.offset:,}" if post.upload_url and post.offset else ""
            log.info("uploading %s (post %s, %s bytes%s)", name, post.post_id,
                     f"{post.identity.size:,}", start, extra=extra)  # fmt: skip
        else:
            log.info("checking whether %s went through (post %s)", name, post.post_id,
                     extra=extra)  # fmt: skip

    def run(self, journal: Journal) -> Post | BaseException:
        """Upload or check (in the calling thread); the post as it ended, or what went wrong."""
        result: Post | BaseException
        try:
            if self.kind == "upload":
                result = self.uploader.upload_post(self.post.post_id, chunk_size=self.chunk_size)
            else:
                checked = self.uploader.verify_due(post_ids=[self.post.post_id])
                result = checked[0] if checked else journal.get(self.post.post_id)
        except BaseException as exc:  # reported by the main thread
            result = exc
        finally:
            with contextlib.suppress(Exception):
                self.uploader.close()
        return result

    def start(self, journal: Journal, done: Callable[[Job, Post | BaseException], None]) -> None:
        """Run it in a new (daemon) thread, then call ``done`` there."""
        name = f"steadypost-{self.kind}-{self.post.post_id[-6:]}"
        threading.Thread(target=lambda: done(self, self.run(journal)), daemon=True,
                         name=name).start()  # fmt: skip


@contextlib.contextmanager
def forwarded_signals(put: Callable[[int], None], *, enabled: bool) -> Iterator[None]:
    """While inside: SIGTERM, SIGINT and SIGHUP only call ``put(signum)`` (main thread only).

    ``put`` must be safe in a signal handler (``queue.SimpleQueue.put`` is).
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        put(signum)

    wanted = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
