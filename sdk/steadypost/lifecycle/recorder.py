"""One journaled post upload: claim, journal every step, decide the outcome.

:class:`PostRun` holds everything about uploading a claimed post *except* the
I/O, so the sync and the async uploader share it and only differ in how they
pump the flow. The journal sees each step before the flow goes on:

* the upload URL, the moment the creation answer names it (before any PATCH);
* the offset after each acknowledged chunk;
* every request (method, URL without secrets, status, request id, error) and
  every wait (seconds and reason) as events: the creator's evidence;
* the outcome: ``confirmed``; ``unconfirmed`` when the last bytes may have
  been processed but no answer said so (checked 15-30 minutes later);
  ``waiting`` with a jittered next attempt when nothing was lost but the
  server was unavailable; ``failed`` when a retry cannot help.

The lease is renewed while the upload runs (on each block, request and
wait), so a second process never uploads the same post, and a dead
process's post is taken up again once its lease expires.

Fencing: every write names the run's lease, the owner and the epoch its claim
got. Once another worker has claimed the post (this one was frozen past its
lease, say), the write raises :class:`~steadypost.errors.LeaseHeldError` and
the run stops without sending anything more: the intent journaled before each
body request fails, a body is cut between two blocks when the last renewal is
older than a third of the lease (the renewal is the check), and a publish is
retried only while the lease holds (:meth:`PostRun.fence`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from steadypost.drivers.files import FileHasher, OpenedFile, snapshot_file
from steadypost.errors import (
    HostUnavailableError,
    IllegalTransitionError,
    JournalError,
    LeaseHeldError,
    SteadypostError,
)
from steadypost.flow import FileBody, Request, Response, Sleep
from steadypost.flow.events import (
    BodyNotSent,
    BodySending,
    OffsetAcknowledged,
    OffsetReported,
    PlatformState,
    UploadCreated,
    UploadExpiresChanged,
    UploadRestarted,
)
from steadypost.journal import Journal
from steadypost.lifecycle import outcome
from steadypost.lifecycle.options import PostOptions
from steadypost.models import LocalFile, Post, PostState
from steadypost.platforms.base import CheckResult
from steadypost.platforms.http import request_id
from steadypost.policy import RetryPolicy

T = TypeVar("T")
log = logging.getLogger("steadypost")

class BatchedWrites:
    """The journal as a running upload writes to it.

    ``request`` and ``wait`` events are kept until the next state write (the
    offset checkpoint that follows each chunk's answer, a lease renewal, the
    outcome) and committed in the same transaction: one fsync per chunk
    instead of two. State writes themselves are never delayed.
    """

    _BATCHED = frozenset({"request", "wait"})

    def __init__(self, journal: Journal, *, owner: str | None = None,
                 epoch: int | None = None) -> None:  # fmt: skip
        self.inner = journal
        self._pending: list[tuple[str, str, Mapping[str, Any]]] = []
        self._fence = {"owner": owner, "epoch": epoch} if owner is not None else {}

    def record(self, post_id: str, kind: str, data: Mapping[str, Any]) -> None:
        if kind in self._BATCHED:
            self._pending.append((post_id, kind, data))  # (fenced by the write they go with)
        else:
            self._write(self.inner.record, post_id, kind, data, **self._fence)

    def _write(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.inner.atomic():
            for post_id, kind, data in self._pending:
                self.inner.record(post_id, kind, data)
            result = write(*args, **kwargs)
        self._pending.clear()
        return result

    def checkpoint(self, post_id: str, **fields: Any) -> Post:
        return self._write(self.inner.checkpoint, post_id, **fields)

    def transition(self, post_id: str, to: PostState, **fields: Any) -> Post:
        return self._write(self.inner.transition, post_id, to, **fields)

    def release(self, post_id: str, **fields: Any) -> Post:
        return self._write(self.inner.release, post_id, **fields)

    def renew(self, post_id: str, **fields: Any) -> Post:
        return self._write(self.inner.renew, post_id, **fields)


class EventRecorder:
    """Records a post's requests and waits in its journal (the creator's evidence)."""

    def __init__(self, journal: Journal | BatchedWrites, post: Post) -> None:
        self.journal = journal
        self.post = post

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None:  # fmt: skip
        data: dict[str, object] = {
            "method": request.method, "url": request.url, "elapsed_ms": round(elapsed_s * 1000),
        }  # fmt: skip
        if request.body_length:
            data["body_bytes"] = request.body_length
        if response is not None:
            data["status"] = response.status
            rid = request_id(response)
            if rid:
                data["request_id"] = rid
        if error is not None:
            data["error"] = str(error)
        self.journal.record(self.post.post_id, "request", data)

    def on_wait(self, sleep: Sleep) -> None:
        data = {"seconds": round(sleep.seconds, 3), "reason": sleep.reason}
        self.journal.record(self.post.post_id, "wait", data)

    def on_event(self, event: object) -> None:
        return None

    def on_body(self, body: FileBody, position: int) -> None:
        return None


class PostRun(EventRecorder):
    """A claimed post, from the file check to the journaled outcome."""

    def __init__(
        self,
        journal: Journal,
        post: Post,
        *,
        owner: str,
        clock: Callable[[], float],
        rng: random.Random,
        policy: RetryPolicy,
        options: PostOptions,
    ) -> None:
        super().__init__(BatchedWrites(journal, owner=owner, epoch=post.lease_epoch), post)
        self.journal: BatchedWrites
        self.owner = owner
        self.epoch = post.lease_epoch
        """The fencing token of this run's claim: every write names it."""
        self.clock = clock
        self.rng = rng
        self.policy = policy
        self.options = options
        self.upload_url = post.upload_url
        self.offset = post.offset if post.upload_url else 0
        self.last_byte_sent = False
        self._renewed_at = clock()
        self.hasher: FileHasher | None = None
        """The file's SHA-256 in the making, once the upload has begun."""
        self.file: OpenedFile | None = None
        """The file, opened once for this run (every byte sent and hashed is read from it)."""

    # -- before the upload --

    def open_file(self) -> LocalFile:
        """Open the file for this run; a changed file fails the post or starts it over.

        The snapshot is compared with the journaled identity (size, mtime, and
        device, inode and status-change time where both are known); the file
        is then opened once, and that descriptor is checked against the
        snapshot, so a file swapped in between is caught too.
        """
        file = snapshot_file(self.post.path)
        known = self.post.identity
        change = known.differs_from(file.identity)
        if change is not None:
            restart = outcome.file_changed(
                self.post, change, size=file.size, mtime_ns=file.mtime_ns, dev=file.dev,
                inode=file.inode, ctime_ns=file.ctime_ns, options=self.options,
            )  # fmt: skip (raises FileProblemError unless restart_if_changed)
            self.apply(restart)
            self.upload_url, self.offset = None, 0
        elif known.inode is None and file.inode is not None:  # journaled by steadypost 0.1
            self.post = self._checkpoint(dev=file.dev, inode=file.inode, ctime_ns=file.ctime_ns)
        self.file = OpenedFile(file.path, file.identity)
        return file

    def close_file(self) -> None:
        """Let go of this run's file (the hasher thread keeps its own hold until it ends)."""
        if self.hasher is not None:
            self.hasher.stop()
        file, self.file = self.file, None
        if file is not None:
            file.release()

    # -- while it runs (the driver's observer) --

    def _checkpoint(self, **fields: Any) -> Post:
        """A fenced checkpoint of this run (which renews its lease)."""
        now = self.clock()
        post = self.journal.checkpoint(self.post.post_id, owner=self.owner, epoch=self.epoch,
                                       lease_s=self.options.lease_s, **fields)  # fmt: skip
        self._renewed_at = now
        return post

    def _renew(self, extra_s: float = 0.0) -> None:
        """Renew the lease if a third of it has passed: and so learn whether it still holds."""
        now = self.clock()
        if extra_s or now - self._renewed_at > self.options.lease_s / 3:
            self.journal.renew(self.post.post_id, owner=self.owner, epoch=self.epoch,
                               lease_s=self.options.lease_s + extra_s)  # fmt: skip
            self._renewed_at = now

    def fence(self) -> None:
        """Before a request that must not go out once another worker has the post.

        Raises ``LeaseHeldError`` if this run's lease was taken over (a publish
        retried after a long freeze, say); otherwise renews it.
        """
        self.journal.renew(self.post.post_id, owner=self.owner, epoch=self.epoch,
                           lease_s=self.options.lease_s)  # fmt: skip
        self._renewed_at = self.clock()

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None:  # fmt: skip
        super().on_exchange(request, response, error, elapsed_s)
        self._renew()

    def on_wait(self, sleep: Sleep) -> None:
        super().on_wait(sleep)
        self._renew(extra_s=sleep.seconds)

    def on_event(self, event: object) -> None:
        post_id = self.post.post_id
        if isinstance(event, BodySending):
            # Intent, before the request: what the post put on the wire, and how far.
            fields: dict[str, Any] = {"bytes_sent": self.post.bytes_sent + event.end - event.start}
            if event.upload_url is not None and event.upload_url == self.upload_url:
                fields["sent_to"] = max(self.post.sent_to or 0, event.end)
            self.post = self._checkpoint(**fields)
        elif isinstance(event, BodyNotSent):
            self.post = self._checkpoint(bytes_sent=max(0, self.post.bytes_sent - event.length))
        elif isinstance(event, UploadCreated):
            self.upload_url, self.offset, self.last_byte_sent = (
                event.upload_url,
                event.offset,
                False,
            )
            extra = {"extra": {**self.post.extra, **event.extra}} if event.extra else {}
            self.post = self._checkpoint(
                upload_url=event.upload_url, offset=event.offset,
                upload_expires_at=event.expires_at, sent_to=event.sent_to, **extra,
            )  # fmt: skip
        elif isinstance(event, PlatformState):
            self.post = self._checkpoint(extra={**self.post.extra, **event.extra})
        elif isinstance(event, OffsetAcknowledged) and event.offset > self.offset:
            self.offset = event.offset
            self._checkpoint(offset=event.offset)
        elif isinstance(event, OffsetReported) and event.offset < event.total:
            self.last_byte_sent = False  # the server says what it lacks: nothing is ambiguous
        elif isinstance(event, UploadExpiresChanged):
            self._checkpoint(upload_expires_at=event.expires_at)
        elif isinstance(event, UploadRestarted):
            self.journal.record(
                post_id, "note", {"message": f"starting a new upload: {event.reason}"}
            )

    def on_body(self, body: FileBody, position: int) -> None:
        """After each block of a body: the next block goes only while the lease holds."""
        if position >= body.file.size:
            self.last_byte_sent = True
        self._renew()

    # -- the outcome (decided by lifecycle.outcome, applied here) --

    def _ctx(self) -> outcome.Context:
        return outcome.Context(now=self.clock(), rng=self.rng, policy=self.policy,
                               options=self.options)  # fmt: skip

    def apply(self, transition: outcome.Transition) -> Post:
        """Journal ``transition`` in one transaction, as this run's lease holder.

        If the post was cancelled (or taken over by another worker) while this
        run went on, that stands: the run's outcome is dropped quietly.
        """
        try:
            self.post = self.journal.transition(
                self.post.post_id, transition.to, owner=self.owner, epoch=self.epoch,
                event=dict(transition.event), **transition.fields,
            )  # fmt: skip
        except (IllegalTransitionError, LeaseHeldError):
            return self.lost()
        return self.post

    def lost(self) -> Post:
        """The post as the journal has it, after another hand moved it (a cancel, a takeover)."""
        self.post = self.journal.inner.get(self.post.post_id)
        log.info("post %s is %s now: this run's result is not recorded", self.post.post_id,
                 self.post.state.value)  # fmt: skip
        return self.post

    def succeeded(self, sha256: str | None) -> Post:
        """The server holds every byte (tus: its offset equals the length): confirmed."""
        return self.apply(outcome.uploaded(self.post, sha256=sha256))

    def failed(self, exc: SteadypostError) -> Post:
        """Journal a failed run: waiting, unconfirmed or failed, never lost."""
        return self.apply(outcome.upload_failed(
            self.post, exc, last_byte_sent=self.last_byte_sent, ctx=self._ctx()))

    def publishing(self, sha256: str | None) -> None:
        """Every byte is up; journal the intent to publish before the request."""
        extra = {**self.post.extra, outcome.PUBLISH_SENT: self.clock()}
        self.post = self._checkpoint(offset=self.post.identity.size, sha256=sha256, extra=extra)
        self.last_byte_sent = True  # from here on, a lost answer is ambiguous

    def publish_failed(self, exc: SteadypostError) -> Post:
        """The publish request failed: unknown -> verify, not sent -> wait, refused -> failed."""
        if isinstance(exc, JournalError):
            raise exc
        return self.apply(outcome.publish_failed(self.post, exc, ctx=self._ctx()))

    def publish_unknown(self) -> Post:
        """An earlier run sent the publish and its answer was lost: verify, never resend."""
        return self.apply(outcome.publish_unknown(self.post, ctx=self._ctx()))

    def published(self, result: CheckResult) -> Post:
        """The platform answered the publish request."""
        return self.apply(outcome.published(self.post, result, ctx=self._ctx()))

    def deferred(self, refusal: HostUnavailableError) -> Post:
        """Not started: the host is recovering. Waits for it; no attempt is charged."""
        return self.apply(outcome.deferred(refusal, ctx=self._ctx()))

    def interrupted(self, why: str) -> Post:
        """The run was stopped from outside (Ctrl-C, task cancelled): resumable at once."""
        return self.apply(outcome.interrupted(why, ctx=self._ctx()))
