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

import random
from collections.abc import Callable

from ..errors import SteadypostError
from ..journal import Journal
from ..models import Post, PostState
from ..platforms.base import CheckResult
from ..policy import RetryPolicy
from . import outcome
from .options import PostOptions


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
