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
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._fileio import OpenedFile
from .digest import FileHasher
from .errors import (
    ConfigurationError,
    FileProblemError,
    HostUnavailableError,
    IllegalTransitionError,
    InternalError,
    JournalError,
    LeaseHeldError,
    Outcome,
    ProtocolError,
    RetriesExhaustedError,
    StatusError,
    SteadypostError,
    UploadCancelledError,
)
from .events import (
    BodyNotSent,
    BodySending,
    OffsetAcknowledged,
    OffsetReported,
    PlatformState,
    UploadCreated,
    UploadExpiresChanged,
    UploadRestarted,
)
from .files import snapshot_file
from .flow import FileBody, Request, Response, Sleep
from .journal import DEFAULT_LEASE_S, Journal
from .models import LocalFile, Post, PostState
from .platforms.base import CheckResult, CheckStatus
from .platforms.tus import request_id
from .policy import RetryPolicy, retry_wait

T = TypeVar("T")
log = logging.getLogger("steadypost")

DEFAULT_VERIFY_WINDOW_S = (15 * 60.0, 30 * 60.0)
DEFAULT_MAX_PROTOCOL_FAILURES = 5
DEFAULT_RECHECK_BASE_S = 30 * 60.0
DEFAULT_RECHECK_CAP_S = 6 * 3600.0
DEFAULT_UNRESOLVED_AFTER_S = 72 * 3600.0


def retry_delay(
    exc: SteadypostError, attempts: int, *, policy: RetryPolicy, rng: random.Random
) -> float:
    """How long a post that failed without anything lost waits before its next attempt.

    The host's own time when its guard turned the request away (circuit open,
    budget spent, ``Retry-After``, status page); else the post's jittered
    backoff, or the server's longer ``Retry-After``.
    """
    if isinstance(exc, HostUnavailableError):
        return exc.retry_after
    cause = exc.__cause__ if isinstance(exc, RetriesExhaustedError) else exc
    retry_after = cause.retry_after if isinstance(cause, StatusError) else None
    return retry_wait(policy, attempts, retry_after=retry_after, rng=rng)


@dataclass(frozen=True, kw_only=True)
class PostOptions:
    """How journaled posts behave. Every field has a named default."""

    lease_s: float = DEFAULT_LEASE_S
    """How long a claim holds without renewal (a dead process's post is free after it)."""
    verify_window_s: tuple[float, float] = DEFAULT_VERIFY_WINDOW_S
    """An ``unconfirmed`` post is first checked at a uniformly random moment in this window."""
    restart_if_changed: bool = False
    """A file changed since its post began starts over from byte 0 instead of failing."""
    max_protocol_failures: int = DEFAULT_MAX_PROTOCOL_FAILURES
    """A server answering nonsense this many times in a row fails the post."""
    recheck_base_s: float = DEFAULT_RECHECK_BASE_S
    """A post still processing is checked again after this, then twice as long, ..."""
    recheck_cap_s: float = DEFAULT_RECHECK_CAP_S
    """... but never more than this between two checks."""
    unresolved_after_s: float = DEFAULT_UNRESOLVED_AFTER_S
    """A post still unsettled this long after its outcome became unknown is ``failed``."""

    def __post_init__(self) -> None:
        low, high = self.verify_window_s
        if not 0 <= low <= high:
            raise ValueError(
                "PostOptions.verify_window_s must be (low, high) with 0 <= low <= high"
            )


class BatchedWrites:
    """The journal as a running upload writes to it.

    ``request`` and ``wait`` events are kept until the next state write (the
    offset checkpoint that follows each chunk's answer, a lease renewal, the
    outcome) and committed in the same transaction: one fsync per chunk
    instead of two. State writes themselves are never delayed.
    """

    _BATCHED = frozenset({"request", "wait"})

    def __init__(self, journal: Journal) -> None:
        self.inner = journal
        self._pending: list[tuple[str, str, Mapping[str, Any]]] = []

    def record(self, post_id: str, kind: str, data: Mapping[str, Any]) -> None:
        if kind in self._BATCHED:
            self._pending.append((post_id, kind, data))
        else:
            self._write(self.inner.record, post_id, kind, data)

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
        super().__init__(BatchedWrites(journal), post)
        self.journal: BatchedWrites
        self.owner = owner
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
            if not self.options.restart_if_changed:
                raise FileProblemError(
                    f"{file.path} changed since its post began ({change}); it is never "
                    "resumed into the old upload. Post it again, or pass "
                    "restart_if_changed=True to start over"
                )
            self.post = self.journal.transition(
                self.post.post_id, PostState.UPLOADING, owner=self.owner,
                upload_url=None, offset=0, sha256=None, size=file.size, mtime_ns=file.mtime_ns,
                dev=file.dev, inode=file.inode, ctime_ns=file.ctime_ns, sent_to=0,
                event={"note": f"the file changed ({change}): starting over from byte 0"},
            )  # fmt: skip
            self.upload_url, self.offset = None, 0
        elif known.inode is None and file.inode is not None:  # journaled by steadypost 0.1
            self.post = self.journal.checkpoint(
                self.post.post_id, owner=self.owner, dev=file.dev, inode=file.inode,
                ctime_ns=file.ctime_ns, lease_s=self.options.lease_s,
            )  # fmt: skip
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

    def _renew(self, extra_s: float = 0.0) -> None:
        now = self.clock()
        if extra_s or now - self._renewed_at > self.options.lease_s / 3:
            self.journal.renew(
                self.post.post_id, owner=self.owner, lease_s=self.options.lease_s + extra_s
            )
            self._renewed_at = now

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
        post_id, owner = self.post.post_id, self.owner
        if isinstance(event, BodySending):
            # Intent, before the request: what the post put on the wire, and how far.
            fields: dict[str, Any] = {"bytes_sent": self.post.bytes_sent + event.end - event.start}
            if event.upload_url is not None and event.upload_url == self.upload_url:
                fields["sent_to"] = max(self.post.sent_to or 0, event.end)
            self.post = self.journal.checkpoint(
                post_id, owner=owner, lease_s=self.options.lease_s, **fields
            )
        elif isinstance(event, BodyNotSent):
            self.post = self.journal.checkpoint(
                post_id, owner=owner, lease_s=self.options.lease_s,
                bytes_sent=max(0, self.post.bytes_sent - event.length),
            )  # fmt: skip
        elif isinstance(event, UploadCreated):
            self.upload_url, self.offset, self.last_byte_sent = (
                event.upload_url,
                event.offset,
                False,
            )
            extra = {"extra": {**self.post.extra, **event.extra}} if event.extra else {}
            self.post = self.journal.checkpoint(
                post_id, owner=owner, upload_url=event.upload_url, offset=event.offset,
                upload_expires_at=event.expires_at, sent_to=event.sent_to,
                lease_s=self.options.lease_s, **extra,
            )  # fmt: skip
        elif isinstance(event, PlatformState):
            self.post = self.journal.checkpoint(
                post_id, owner=owner, extra={**self.post.extra, **event.extra},
                lease_s=self.options.lease_s,
            )  # fmt: skip
        elif isinstance(event, OffsetAcknowledged) and event.offset > self.offset:
            self.offset = event.offset
            self.journal.checkpoint(
                post_id, owner=owner, offset=event.offset, lease_s=self.options.lease_s
            )
        elif isinstance(event, OffsetReported) and event.offset < event.total:
            self.last_byte_sent = False  # the server says what it lacks: nothing is ambiguous
        elif isinstance(event, UploadExpiresChanged):
            self.journal.checkpoint(
                post_id, owner=owner, upload_expires_at=event.expires_at,
                lease_s=self.options.lease_s,
            )  # fmt: skip
        elif isinstance(event, UploadRestarted):
            self.journal.record(
                post_id, "note", {"message": f"starting a new upload: {event.reason}"}
            )

    def on_body(self, body: FileBody, position: int) -> None:
        if position >= body.file.size:
            self.last_byte_sent = True
        self._renew()

    # -- the outcome --

    def succeeded(self, sha256: str | None, size: int) -> Post:
        """The server holds every byte (tus: its offset equals the length): confirmed."""
        self.post = self.journal.transition(
            self.post.post_id, PostState.CONFIRMED, owner=self.owner,
            offset=size, sha256=sha256, last_error=None, next_attempt_at=None,
            event={"reason": "the server holds every byte"},
        )  # fmt: skip
        return self.post

    def failed(self, exc: SteadypostError) -> Post:
        """Journal a failed run: waiting, unconfirmed or failed, never lost."""
        now = self.clock()
        if isinstance(exc, UploadCancelledError) and not self.last_byte_sent:
            # Stopped on purpose (cancel(), a daemon's SIGTERM): not a failure, no attempt spent.
            event = {"note": "stopped; resumable from the server's offset"}
            return self._end(PostState.WAITING, next_attempt_at=now, event=event)
        attempts = self.post.attempts + 1
        message = str(exc)
        to, when = self._classify(exc, attempts, now)
        event = {"error": message, "outcome": exc.outcome.value, "type": type(exc).__name__}
        fields: dict[str, Any] = {}
        if isinstance(exc, ConfigurationError):  # a wrong endpoint, not the platform's doing
            fields["extra"] = {**self.post.extra, "failed_because": "configuration"}
        return self._end(
            to, attempts=attempts, next_attempt_at=when, last_error=message, event=event,
            **fields,
        )  # fmt: skip

    def _end(self, to: PostState, **fields: Any) -> Post:
        """Leave ``uploading``; an unconfirmed post remembers since when.

        If the post was cancelled (or taken over by another worker) while this
        run went on, that stands: the run's outcome is dropped quietly.
        """
        if to is PostState.UNCONFIRMED:
            fields["extra"] = {**self.post.extra, "unconfirmed_since": self.clock(), "checks": 0}
        try:
            self.post = self.journal.transition(self.post.post_id, to, owner=self.owner, **fields)
        except (IllegalTransitionError, LeaseHeldError):
            return self.lost()
        return self.post

    def lost(self) -> Post:
        """The post as the journal has it, after another hand moved it (a cancel, a takeover)."""
        self.post = self.journal.inner.get(self.post.post_id)
        log.info("post %s is %s now: this run's result is not recorded", self.post.post_id,
                 self.post.state.value)  # fmt: skip
        return self.post

    def first_check_at(self, now: float) -> float:
        """A uniformly random moment in the verification window after ``now``."""
        low, high = self.options.verify_window_s
        return now + self.rng.uniform(low, high)

    # -- the publish step (platforms that have one) --

    def publishing(self, sha256: str | None) -> None:
        """Every byte is up; journal the intent to publish before the request."""
        extra = {**self.post.extra, "publish_started_at": self.clock()}
        self.post = self.journal.checkpoint(
            self.post.post_id, owner=self.owner, offset=self.post.identity.size,
            sha256=sha256, extra=extra, lease_s=self.options.lease_s,
        )  # fmt: skip
        self.last_byte_sent = True  # from here on, a lost answer is ambiguous

    def publish_failed(self, exc: SteadypostError) -> Post:
        """The publish request failed: unknown -> verify, not sent -> wait, refused -> failed."""
        if isinstance(exc, JournalError):
            raise exc
        now = self.clock()
        attempts = self.post.attempts + 1
        event = {"publish_error": str(exc), "outcome": exc.outcome.value}
        fields: dict[str, Any] = {"attempts": attempts, "last_error": str(exc), "event": event}
        if exc.outcome is Outcome.AMBIGUOUS:
            return self._end(
                PostState.UNCONFIRMED, next_attempt_at=self.first_check_at(now), **fields
            )
        if exc.outcome is Outcome.REJECTED:
            return self._end(PostState.FAILED, next_attempt_at=None, **fields)
        when = now + retry_delay(exc, attempts, policy=self.policy, rng=self.rng)
        return self._end(PostState.WAITING, next_attempt_at=when, **fields)

    def published(self, result: CheckResult) -> Post:
        """The platform answered the publish request."""
        event = {"publish": result.status.value, "reason": result.reason}
        if result.status is CheckStatus.PROCESSED:
            return self._end(
                PostState.CONFIRMED, next_attempt_at=None, last_error=None, event=event
            )
        if result.status is CheckStatus.FAILED and not result.retryable:
            why = f"the platform refused the post: {result.reason or 'no reason given'}"
            return self._end(PostState.FAILED, next_attempt_at=None, last_error=why, event=event)
        # Accepted and processing (or an odd answer): verify in the window.
        now = self.clock()
        return self._end(PostState.UNCONFIRMED, next_attempt_at=self.first_check_at(now),
                         last_error=None, event=event)  # fmt: skip

    def _classify(
        self, exc: SteadypostError, attempts: int, now: float
    ) -> tuple[PostState, float | None]:
        if isinstance(exc, UploadCancelledError):
            return PostState.WAITING, now
        if isinstance(exc, FileProblemError):
            return PostState.FAILED, None
        if isinstance(exc, ProtocolError | InternalError) and (
                attempts >= self.options.max_protocol_failures):  # fmt: skip
            return PostState.FAILED, None
        if exc.outcome is Outcome.REJECTED and not isinstance(exc, ProtocolError):
            return PostState.FAILED, None
        if self.last_byte_sent:
            # Every byte went out and no answer said whether it was processed.
            return PostState.UNCONFIRMED, self.first_check_at(now)
        return PostState.WAITING, now + retry_delay(exc, attempts, policy=self.policy, rng=self.rng)

    def deferred(self, refusal: HostUnavailableError) -> Post:
        """Not started: the host is recovering. Waits for it; no attempt is charged."""
        return self._end(
            PostState.WAITING, next_attempt_at=self.clock() + refusal.retry_after,
            last_error=str(refusal), event={"deferred": refusal.reason or str(refusal)},
        )  # fmt: skip

    def interrupted(self, why: str) -> Post:
        """The run was stopped from outside (Ctrl-C, task cancelled): resumable at once."""
        try:
            self.post = self.journal.release(
                self.post.post_id, owner=self.owner, to=PostState.WAITING,
                next_attempt_at=self.clock(), last_error=why,
            )  # fmt: skip
        except (IllegalTransitionError, LeaseHeldError):
            return self.lost()
        return self.post
