"""Verification: settle an ``unconfirmed`` post by asking the platform, never by re-posting.

A post is ``unconfirmed`` when its last bytes (or its publish request) may
have been processed but no answer said so. Its first check comes at a
uniformly random moment 15-30 minutes later (``PostOptions.verify_window_s``):
during the outage that inspired this project, most "failed" posts went live
within that window. Then, by the platform's answer:

* processed -> ``confirmed``;
* processing -> checked again after 30 min, 1 h, 2 h, ... up to 6 h between
  checks, and ``failed`` (unresolved, with the evidence in the journal) once
  72 hours have passed since the post became unconfirmed;
* not processed, or failed with a reason a retry can help -> ``queued``
  again under the same post id (the upload is resumed if it still exists);
* failed for good -> ``failed`` with the platform's reason.

A check that cannot be made (the platform is down) changes nothing but the
time of the next check.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Collection
from dataclasses import replace

from steadypost.errors import JournalError, PostNotFoundError, SteadypostError
from steadypost.flow import Drive, Flow, with_retries
from steadypost.journal import Journal
from steadypost.lifecycle import outcome
from steadypost.lifecycle.options import PostOptions
from steadypost.lifecycle.recorder import EventRecorder
from steadypost.lifecycle.wiring import Wiring
from steadypost.models import Post, PostState
from steadypost.platforms.base import CheckResult
from steadypost.policy import RetryPolicy

#: Checks of unconfirmed posts retry briefly; the next check comes later anyway.
CHECK_ATTEMPTS = 3


class VerifyRun:
    """One due check of one ``unconfirmed`` post: the journal side (the driver asks)."""

    def __init__(
        self,
        journal: Journal,
        post: Post,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        policy: RetryPolicy,
        options: PostOptions,
    ) -> None:
        self.journal = journal
        self.policy = policy
        self.post = post
        self.clock = clock
        self.rng = rng
        self.options = options

    def _ctx(self) -> outcome.Context:
        return outcome.Context(now=self.clock(), rng=self.rng, policy=self.policy,
                               options=self.options)  # fmt: skip

    def apply(self, result: CheckResult) -> Post:
        """Move the post by the platform's answer (see the module docstring)."""
        return self._move(outcome.checked(self.post, result, ctx=self._ctx()))

    def check_failed(self, exc: SteadypostError) -> Post:
        """The platform could not be asked: try again later, change nothing else."""
        return self._move(outcome.check_failed(self.post, exc, ctx=self._ctx()))

    def _move(self, transition: outcome.Transition) -> Post:
        """Apply the transition only if nobody else settled the post since it was read."""
        with self.journal.atomic():
            current = self.journal.get(self.post.post_id)
            if (
                current.state is not PostState.UNCONFIRMED
                or current.updated_at != self.post.updated_at
            ):
                return current
            if transition.evidence is not None:
                self.journal.record(current.post_id, "verify", transition.evidence)
            self.post = self.journal.transition(
                current.post_id, transition.to, event=dict(transition.event),
                **transition.fields,
            )  # fmt: skip
        return self.post


# --- the operations ------------------------------------------------------------------------


def verify_due(
    up: Wiring, *, everything: bool = False, post_ids: Collection[str] | None = None
) -> Flow[list[Post]]:
    """Check the ``unconfirmed`` posts whose time has come (every one with ``everything``)."""
    checked = []
    for post in _verifiable(up, everything, post_ids):
        result: Post = yield Drive(_verify_flow(up, post), EventRecorder(up.journal, post))
        checked.append(result)
    return checked


def cancel_post(up: Wiring, post_id: str) -> Flow[Post]:
    """Journal the cancellation first, then ask the server to drop the upload."""
    post = up.journal.get(post_id)
    result: Post = yield Drive(_cancel_flow(up, post_id), EventRecorder(up.journal, post))
    return result


def _verifiable(up: Wiring, everything: bool, post_ids: Collection[str] | None) -> list[Post]:
    if post_ids is None:
        posts = up.journal.list(state=PostState.UNCONFIRMED)
    else:  # (read by id: a daemon checks one post of thousands at a time)
        found = []
        for post_id in dict.fromkeys(post_ids):
            with contextlib.suppress(PostNotFoundError):
                found.append(up.journal.get(post_id))
        posts = sorted((p for p in found if p.state is PostState.UNCONFIRMED),
                       key=lambda p: (p.created_at, p.post_id))  # fmt: skip
    if everything:
        return posts
    now = up.clock()
    return [p for p in posts if (p.next_attempt_ts or 0.0) <= now]


def _verify_flow(up: Wiring, post: Post) -> Flow[Post]:
    check = VerifyRun(up.journal, post, clock=up.clock, rng=up.rng, policy=up.retry_policy,
                      options=up.post_options)  # fmt: skip
    policy = replace(up.retry_policy, max_attempts=CHECK_ATTEMPTS, deadline_s=None)
    try:
        platform = up.platform(post)
        result = yield from with_retries(lambda: platform.check(post), up.retry_ctx(policy))
    except SteadypostError as exc:
        if isinstance(exc, JournalError):
            raise
        return check.check_failed(exc)
    return check.apply(result)


def _cancel_flow(up: Wiring, post_id: str) -> Flow[Post]:
    journal = up.journal
    post = journal.get(post_id)
    if post.state.finished:
        return post
    post = journal.transition(post_id, PostState.CANCELLED, event={"by": "user"})
    if post.upload_url:
        try:
            terminate = up.platform(post).cancel(post)
            if terminate is not None:
                yield from terminate
        except SteadypostError as exc:
            journal.record(post_id, "note", {"message": f"server-side delete failed: {exc}"})
    return post
