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
from typing import Any

from .errors import SteadypostError
from .journal import Journal
from .models import Post, PostState
from .platforms.base import CheckResult, CheckStatus
from .posting import PostOptions


def recheck_delay(checks: int, options: PostOptions, rng: random.Random) -> float:
    """The gap before check number ``checks + 1`` of a post still processing (±10% jitter)."""
    base = min(options.recheck_cap_s, options.recheck_base_s * 2.0 ** min(checks - 1, 32))
    return base * rng.uniform(0.9, 1.1)


class VerifyRun:
    """One due check of one ``unconfirmed`` post: the journal side (the driver asks)."""

    def __init__(
        self,
        journal: Journal,
        post: Post,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        options: PostOptions,
    ) -> None:
        self.journal = journal
        self.post = post
        self.clock = clock
        self.rng = rng
        self.options = options

    @property
    def checks(self) -> int:
        return int(self.post.extra.get("checks", 0)) + 1

    @property
    def since(self) -> float:
        return float(self.post.extra.get("unconfirmed_since", self.post.updated_at))

    def apply(self, result: CheckResult) -> Post:
        """Move the post by the platform's answer (see the module docstring)."""
        evidence: dict[str, Any] = {
            "check": self.checks, "status": result.status.value, "reason": result.reason,
            "retryable": result.retryable, **dict(result.detail),
        }  # fmt: skip
        now = self.clock()
        if result.status is CheckStatus.PROCESSED:
            return self._move(PostState.CONFIRMED, evidence, next_attempt_at=None, last_error=None)
        if result.status is CheckStatus.PROCESSING:
            if now - self.since >= self.options.unresolved_after_s:
                hours = self.options.unresolved_after_s / 3600
                why = f"unresolved: still processing {hours:.0f} h after the outcome became unknown"
                return self._move(PostState.FAILED, evidence, last_error=why, next_attempt_at=None)
            delay = recheck_delay(self.checks, self.options, self.rng)
            return self._move(PostState.UNCONFIRMED, evidence, next_attempt_at=now + delay)
        if result.status is CheckStatus.FAILED and not result.retryable:
            why = f"the platform refused the post: {result.reason or 'no reason given'}"
            return self._move(PostState.FAILED, evidence, last_error=why, next_attempt_at=None)
        why = f"not processed ({result.reason or result.status.value}): queued again"
        return self._move(PostState.QUEUED, evidence, last_error=why, next_attempt_at=None)

    def check_failed(self, exc: SteadypostError) -> Post:
        """The platform could not be asked: try again later, change nothing else."""
        evidence = {"check": self.checks, "error": str(exc)}
        delay = recheck_delay(1, self.options, self.rng)
        return self._move(
            PostState.UNCONFIRMED, evidence, next_attempt_at=self.clock() + delay, count=False
        )

    def _move(
        self, to: PostState, evidence: dict[str, Any], *, count: bool = True, **fields: Any
    ) -> Post:
        """Apply the transition only if nobody else settled the post since it was read."""
        with self.journal.atomic():
            current = self.journal.get(self.post.post_id)
            if (
                current.state is not PostState.UNCONFIRMED
                or current.updated_at != self.post.updated_at
            ):
                return current
            self.journal.record(current.post_id, "verify", evidence)
            extra = dict(current.extra)
            if count:
                extra["checks"] = self.checks
            self.post = self.journal.transition(
                current.post_id, to, event={"check": evidence.get("status", "error")},
                extra=extra, **fields,
            )  # fmt: skip
        return self.post
