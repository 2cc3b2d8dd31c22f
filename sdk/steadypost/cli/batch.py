"""Several posts at once (``upload A B C -j 3``, ``resume -j 4``) and the line that sums them up.

With ``-j N`` up to N posts upload at the same time, each in its own thread
with its own :class:`~steadypost.Uploader` (an uploader serves one upload at a
time) and its own ride-out of an outage. Every uploader of the process shares
the per-host guards (circuit breaker, retry budget), so a host that is down or
busy holds back only its own posts: the posts of a healthy host go on.
``-j 1`` (the default) is the one-after-the-other upload as before, in the
main thread.

Ctrl-C stops every upload at its next block or wait (each post is journaled
as it is); the command then says where each stands and exits 130.

At the end one line sums up the run on stderr::

    3 posts in 12.4 s: 2 confirmed, 0 unconfirmed, 1 waiting, 0 failed; 48.0 MiB sent
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from steadypost.cli.app import App
from steadypost.cli.output import size
from steadypost.cli.rideout import RideOut
from steadypost.cli.term import countdown
from steadypost.models import Post, PostState

T = TypeVar("T")
MAX_JOBS = 16
_SUMMED = (PostState.CONFIRMED, PostState.UNCONFIRMED, PostState.WAITING, PostState.FAILED)
_STOP_WAIT_S = 15.0
"""How long Ctrl-C waits for the running uploads to reach their next block and stop."""


@dataclass
class Worker:
    """What one thread of a batch uses: its key for the app's uploaders, its ride-out."""

    key: object
    ride: RideOut


@dataclass
class Batch(Generic[T]):
    """Runs ``work(item, worker)`` for every item, ``jobs`` at a time; results in order."""

    app: App
    jobs: int
    wait_s: float
    done: dict[int, Post] = field(default_factory=dict)
    """The results so far, by the item's index (for Ctrl-C: what finished)."""

    def run(self, items: Sequence[T], work: Callable[[T, Worker], Post]) -> list[Post]:
        if self.jobs <= 1 or len(items) <= 1:
            worker = Worker(None, RideOut(self.app, self.wait_s))
            for n, item in enumerate(items):
                self.done[n] = work(item, worker)
            return [self.done[n] for n in range(len(items))]
        return self._parallel(items, work)

    def _parallel(self, items: Sequence[T], work: Callable[[T, Worker], Post]) -> list[Post]:
        local = threading.local()
        count = [0]
        lock = threading.Lock()

        def worker() -> Worker:
            if not hasattr(local, "worker"):
                with lock:
                    count[0] += 1
                    local.worker = Worker(("job", count[0]), RideOut(self.app, self.wait_s))
            found: Worker = local.worker
            return found

        def one(n: int, item: T) -> None:
            self.done[n] = work(item, worker())

        pool = ThreadPoolExecutor(max_workers=min(self.jobs, MAX_JOBS),
                                  thread_name_prefix="steadypost-upload")  # fmt: skip
        futures: list[Future[None]] = []
        try:
            futures = [pool.submit(one, n, item) for n, item in enumerate(items)]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in finished:
                future.result()  # a bug in one upload is the command's error
        except KeyboardInterrupt:
            self.app.stop_uploads()
            for future in futures:
                future.cancel()
            wait(futures, timeout=_STOP_WAIT_S)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return [self.done[n] for n in range(len(items))]


def summary(posts: Sequence[Post], *, sent: int, seconds: float) -> str:
    """``3 posts in 12 s: 2 confirmed, 0 unconfirmed, 1 waiting, 0 failed; 48.0 MiB sent``."""
    states = Counter(p.state for p in posts)
    parts = [f"{states.get(s, 0)} {s.value}" for s in _SUMMED]
    parts += [f"{n} {s.value}" for s, n in states.items() if s not in _SUMMED and n]
    noun = "post" if len(posts) == 1 else "posts"
    return f"{len(posts)} {noun} in {countdown(seconds)}: {', '.join(parts)}; {size(sent)} sent"


def bytes_sent(before: dict[str, int], after: Sequence[Post]) -> int:
    """Request body bytes these posts put on the wire since ``before`` (post id -> bytes_sent
    when the command took it up; a post made by the command starts at 0)."""
    return sum(max(0, p.bytes_sent - before.get(p.post_id, 0)) for p in after)


__all__ = ["MAX_JOBS", "Batch", "Worker", "bytes_sent", "summary"]
