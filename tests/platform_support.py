"""Helpers the platform tests share (tests/client/test_<platform>.py)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from steadypost import Journal, Post, PostState, RetryPolicy, Uploader
from steadypost.testing import FakeClock


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def uploader_for(journal: Journal, clock: FakeClock, *, token: str, seed: int,
                 **options: object) -> Uploader:  # fmt: skip
    """An uploader on the fake clock, sending ``token``; retries bounded but no deadline."""
    options.setdefault("retry", RetryPolicy(max_attempts=20, deadline_s=None))
    return Uploader(journal=journal, sleep=clock.sleep, clock=clock.now, rng=random.Random(seed),
                    headers={"Authorization": f"Bearer {token}"},
                    **options)  # type: ignore[arg-type]  # fmt: skip


def settle_by_checks(up: Uploader, post: Post, clock: FakeClock) -> Post:
    """Run the post's checks as their times come, until it is no longer unconfirmed."""
    while post.state is PostState.UNCONFIRMED:
        assert post.next_attempt_at is not None
        clock.advance_to(post.next_attempt_at)
        [post] = up.verify_due()
    return post
