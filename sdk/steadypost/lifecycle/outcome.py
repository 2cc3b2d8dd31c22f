"""Which state a post goes to, decided from what happened: pure functions, no journal.

Every decision of the post lifecycle (DESIGN.md, "Post lifecycle") is here, as
a function from the facts (the post as journaled, what the run or the check
saw, the time, a random source) to a :class:`Transition`: the next state,
the fields that change with it, and the evidence for the journal's event.
The recorders (:mod:`steadypost.lifecycle.recorder`) only apply them, each in
one journal transaction; nothing here touches the journal, the network or
the clock, so the whole table is tested without a file (as h11 tests its
state machine).

========================= ===================================================
what happened             where the post goes
========================= ===================================================
every byte is up          ``confirmed`` (:func:`uploaded`)
the upload failed         :func:`upload_failed`: ``waiting`` with backoff when
                          nothing was lost; ``unconfirmed`` (checked in 15-30
                          min) when the last byte went and no answer came;
                          ``failed`` when a retry cannot help
stopped on purpose        ``waiting``, due at once, no attempt spent
publish answered          :func:`published`: processed → ``confirmed``;
                          refused → ``failed``; else ``unconfirmed``
publish failed            :func:`publish_failed`: by the error's outcome
an earlier run's publish  :func:`publish_unknown`: ``unconfirmed``, never sent
went out, its answer lost again blindly (the run died after sending it)
its host is recovering    ``waiting`` until the host's time (:func:`deferred`)
interrupted from outside  ``waiting``, due at once (:func:`interrupted`)
a check answered          :func:`checked`: processed → ``confirmed``;
                          processing → checked again later (``failed`` after
                          72 h); not processed → ``queued`` again; refused →
                          ``failed``
a check could not be made ``unconfirmed``, checked again later
========================= ===================================================
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from steadypost.errors import (
    ConfigurationError,
    FileProblemError,
    HostUnavailableError,
    InternalError,
    Outcome,
    ProtocolError,
    SteadypostError,
    UploadCancelledError,
)
from steadypost.lifecycle.options import PostOptions
from steadypost.models import Post, PostState
from steadypost.platforms.base import CheckResult, CheckStatus
from steadypost.policy import RetryPolicy, recheck_delay, retry_delay

_EMPTY: Mapping[str, Any] = MappingProxyType({})

#: The key of a post's ``extra`` journaled (as intent) before its publish request goes
#: out, and dropped once the publish's outcome is known: a run that finds it there knows
#: an earlier run sent a publish whose answer was never journaled.
PUBLISH_SENT = "publish_started_at"


def _settled(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` without the publish intent: its outcome is known now."""
    return {k: v for k, v in extra.items() if k != PUBLISH_SENT}


@dataclass(frozen=True)
class Transition:
    """A post's next state, the fields that change with it, and the event's evidence."""

    to: PostState
    fields: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """Journal fields (``attempts``, ``next_attempt_at``, ``last_error``, ``extra``, ...)."""
    event: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """What the ``state`` event records besides from/to."""
    evidence: Mapping[str, Any] | None = None
    """A check's answer, recorded as a ``verify`` event before the state event."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """What every decision may use besides the facts: the time, randomness, the options."""

    now: float
    rng: random.Random
    policy: RetryPolicy
    options: PostOptions

    def first_check_at(self) -> float:
        """A uniformly random moment in the verification window (15-30 min by default)."""
        low, high = self.options.verify_window_s
        return self.now + self.rng.uniform(low, high)


def _unconfirmed(post: Post, ctx: Context, **fields: Any) -> dict[str, Any]:
    """An ``unconfirmed`` post remembers since when, and has had no check yet."""
    extra = {**_settled(post.extra), **fields.pop("extra", {}), "unconfirmed_since": ctx.now,
             "checks": 0}
    return {**fields, "extra": extra, "next_attempt_at": ctx.first_check_at()}


# --- an upload run ---------------------------------------------------------------------


def uploaded(post: Post, *, sha256: str | None) -> Transition:
    """The server holds every byte (tus: its offset equals the length): confirmed."""
    return Transition(
        PostState.CONFIRMED,
        {"offset": post.identity.size, "sha256": sha256, "last_error": None,
         "next_attempt_at": None},
        {"reason": "the server holds every byte"},
    )


def upload_failed(
    post: Post, exc: SteadypostError, *, last_byte_sent: bool, ctx: Context
) -> Transition:
    """A run ended with ``exc``: waiting, unconfirmed or failed, never lost."""
    if isinstance(exc, UploadCancelledError) and not last_byte_sent:
        # Stopped on purpose (cancel(), a daemon's SIGTERM): not a failure, no attempt spent.
        return Transition(PostState.WAITING, {"next_attempt_at": ctx.now},
                          {"note": "stopped; resumable from the server's offset"})  # fmt: skip
    attempts = post.attempts + 1
    message = str(exc)
    fields: dict[str, Any] = {"attempts": attempts, "last_error": message}
    event = {"error": message, "outcome": exc.outcome.value, "type": type(exc).__name__}
    if isinstance(exc, ConfigurationError):  # a wrong endpoint, not the platform's doing
        fields["extra"] = {**post.extra, "failed_because": "configuration"}
    if _is_final(exc, attempts, ctx.options):
        return Transition(PostState.FAILED, {**fields, "next_attempt_at": None}, event)
    if isinstance(exc, UploadCancelledError):
        return Transition(PostState.WAITING, {**fields, "next_attempt_at": ctx.now}, event)
    if last_byte_sent:
        # Every byte went out and no answer said whether it was processed.
        return Transition(PostState.UNCONFIRMED, _unconfirmed(post, ctx, **fields), event)
    wait = retry_delay(exc, attempts, policy=ctx.policy, rng=ctx.rng)
    return Transition(PostState.WAITING, {**fields, "next_attempt_at": ctx.now + wait}, event)


def _is_final(exc: SteadypostError, attempts: int, options: PostOptions) -> bool:
    """Whether a retry cannot help: the post fails with the reason."""
    if isinstance(exc, UploadCancelledError):
        return False
    if isinstance(exc, FileProblemError):
        return True
    if isinstance(exc, ProtocolError | InternalError):  # nonsense or a bug: a few tries only
        return attempts >= options.max_protocol_failures
    return exc.outcome is Outcome.REJECTED


def deferred(refusal: HostUnavailableError, *, ctx: Context) -> Transition:
    """Not started: the host is recovering. Waits for it; no attempt is charged."""
    return Transition(
        PostState.WAITING,
        {"next_attempt_at": ctx.now + refusal.retry_after, "last_error": str(refusal)},
        {"deferred": refusal.reason or str(refusal)},
    )


def interrupted(why: str, *, ctx: Context) -> Transition:
    """The run was stopped from outside (Ctrl-C, a cancelled task): resumable at once."""
    return Transition(PostState.WAITING, {"next_attempt_at": ctx.now, "last_error": why})


def file_changed(post: Post, change: str, *, size: int, mtime_ns: int, dev: int | None,
                 inode: int | None, ctime_ns: int | None, options: PostOptions,
                 ) -> Transition:  # fmt: skip
    """The file is not the one the post began with: start over from byte 0, or fail.

    Raises :class:`~steadypost.errors.FileProblemError` unless
    ``options.restart_if_changed``: a changed file is never resumed into the
    old upload (that would corrupt the video).
    """
    if not options.restart_if_changed:
        raise FileProblemError(
            f"{post.path} changed since its post began ({change}); it is never resumed into "
            "the old upload. Post it again, or pass restart_if_changed=True to start over"
        )
    return Transition(
        PostState.UPLOADING,
        {"upload_url": None, "offset": 0, "sha256": None, "size": size, "mtime_ns": mtime_ns,
         "dev": dev, "inode": inode, "ctime_ns": ctime_ns, "sent_to": 0},
        {"note": f"the file changed ({change}): starting over from byte 0"},
    )


# --- the publish step --------------------------------------------------------------------


def published(post: Post, result: CheckResult, *, ctx: Context) -> Transition:
    """The platform answered the publish request."""
    event = {"publish": result.status.value, "reason": result.reason}
    done = {"next_attempt_at": None, "extra": _settled(post.extra)}
    if result.status is CheckStatus.PROCESSED:
        return Transition(PostState.CONFIRMED, {**done, "last_error": None}, event)
    if result.status is CheckStatus.FAILED and not result.retryable:
        why = f"the platform refused the post: {result.reason or 'no reason given'}"
        return Transition(PostState.FAILED, {**done, "last_error": why}, event)
    # Accepted and processing (or an odd answer): verify in the window.
    return Transition(PostState.UNCONFIRMED, _unconfirmed(post, ctx, last_error=None), event)


def publish_failed(post: Post, exc: SteadypostError, *, ctx: Context) -> Transition:
    """The publish request failed: unknown → verify, not sent → wait, refused → failed."""
    attempts = post.attempts + 1
    fields: dict[str, Any] = {"attempts": attempts, "last_error": str(exc)}
    event = {"publish_error": str(exc), "outcome": exc.outcome.value}
    if exc.outcome is not Outcome.AMBIGUOUS:  # not sent, or refused: known
        fields["extra"] = _settled(post.extra)
    if exc.outcome is Outcome.AMBIGUOUS:
        return Transition(PostState.UNCONFIRMED, _unconfirmed(post, ctx, **fields), event)
    if exc.outcome is Outcome.REJECTED:
        return Transition(PostState.FAILED, {**fields, "next_attempt_at": None}, event)
    wait = retry_delay(exc, attempts, policy=ctx.policy, rng=ctx.rng)
    return Transition(PostState.WAITING, {**fields, "next_attempt_at": ctx.now + wait}, event)


def publish_unknown(post: Post, *, ctx: Context) -> Transition:
    """An earlier run sent the publish and died before journaling its answer: verify it.

    Sending it again could post the video twice on a platform that ignores
    idempotency keys; the check in the verification window tells.
    """
    why = "an earlier run sent the publish request and its answer was lost; checking first"
    return Transition(PostState.UNCONFIRMED, _unconfirmed(post, ctx, last_error=why),
                      {"publish": "unknown", "note": why})  # fmt: skip


# --- verification ------------------------------------------------------------------------


def _checks(post: Post) -> int:
    """The number of this check (1 for the first)."""
    return int(post.extra.get("checks", 0)) + 1


def _since(post: Post) -> float:
    return float(post.extra.get("unconfirmed_since", post.updated_ts))


def _recheck(post: Post, ctx: Context) -> float:
    options = ctx.options
    delay = recheck_delay(_checks(post), base_s=options.recheck_base_s,
                          cap_s=options.recheck_cap_s, rng=ctx.rng)  # fmt: skip
    return ctx.now + delay


def checked(post: Post, result: CheckResult, *, ctx: Context) -> Transition:
    """An ``unconfirmed`` post, moved by the platform's answer to its check."""
    evidence: dict[str, Any] = {
        "check": _checks(post), "status": result.status.value, "reason": result.reason,
        "retryable": result.retryable, **dict(result.detail),
    }  # fmt: skip
    extra = {**_settled(post.extra), "checks": _checks(post)}

    def to(state: PostState, **fields: Any) -> Transition:
        return Transition(state, {**fields, "extra": extra}, {"check": result.status.value},
                          evidence)  # fmt: skip

    if result.status is CheckStatus.PROCESSED:
        return to(PostState.CONFIRMED, next_attempt_at=None, last_error=None)
    if result.status is CheckStatus.PROCESSING:
        if ctx.now - _since(post) >= ctx.options.unresolved_after_s:
            hours = ctx.options.unresolved_after_s / 3600
            why = f"unresolved: still processing {hours:.0f} h after the outcome became unknown"
            return to(PostState.FAILED, next_attempt_at=None, last_error=why)
        return to(PostState.UNCONFIRMED, next_attempt_at=_recheck(post, ctx))
    if result.status is CheckStatus.FAILED and not result.retryable:
        why = f"the platform refused the post: {result.reason or 'no reason given'}"
        return to(PostState.FAILED, next_attempt_at=None, last_error=why)
    why = f"not processed ({result.reason or result.status.value}): queued again"
    return to(PostState.QUEUED, next_attempt_at=None, last_error=why)


def check_failed(post: Post, exc: SteadypostError, *, ctx: Context) -> Transition:
    """The platform could not be asked: try again later, change nothing else."""
    evidence = {"check": _checks(post), "error": str(exc)}
    delay = recheck_delay(1, base_s=ctx.options.recheck_base_s,
                          cap_s=ctx.options.recheck_cap_s, rng=ctx.rng)  # fmt: skip
    return Transition(PostState.UNCONFIRMED, {"next_attempt_at": ctx.now + delay},
                      {"check": "error"}, evidence)  # fmt: skip
