"""Backoff and Retry-After as pure functions: bounds, cap, distribution."""

from __future__ import annotations

import email.utils
import random
import statistics

import pytest

from steadypost.policy import (
    RetryPolicy,
    full_jitter,
    parse_retry_after,
    retry_wait,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 9, 20, 100])
def test_full_jitter_stays_within_its_window(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(300.0, 1.0 * 2 ** (attempt - 1))
    draws = [full_jitter(attempt, base_s=1.0, cap_s=300.0, rng=rng) for _ in range(5000)]
    assert min(draws) >= 0.0
    assert max(draws) <= ceiling
    # Full jitter is uniform over [0, ceiling]: mean ceiling/2, and it uses the whole range.
    assert statistics.fmean(draws) == pytest.approx(ceiling / 2, rel=0.05)
    assert min(draws) < ceiling * 0.02
    assert max(draws) > ceiling * 0.98


def test_cap_is_respected_for_huge_attempt_numbers() -> None:
    rng = random.Random(7)
    assert all(full_jitter(10_000, base_s=1, cap_s=300, rng=rng) <= 300 for _ in range(1000))


def test_full_jitter_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="1-based"):
        full_jitter(0, base_s=1, cap_s=2, rng=random.Random())


def test_retry_after_forms() -> None:
    assert parse_retry_after("120", now=NOW) == 120.0
    date = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(date, now=NOW) == pytest.approx(90.0)
    past = email.utils.formatdate(NOW - 90, usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0
    for junk in (None, "", "soon", "-5", "1.5e3"):
        assert parse_retry_after(junk, now=NOW) is None


def test_retry_after_wins_only_when_longer_and_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap_s=600)
    rng = random.Random(3)
    assert retry_wait(policy, 1, retry_after=30, rng=rng) == 30
    assert retry_wait(policy, 1, retry_after=10_000, rng=rng) == 600
    # A short Retry-After never shortens the jittered backoff.
    waits = [retry_wait(policy, 9, retry_after=0.5, rng=rng) for _ in range(200)]
    assert max(waits) > 100


@pytest.mark.parametrize(
    "kwargs",
    [{"base_s": 0}, {"base_s": 5, "cap_s": 1}, {"max_attempts": 0}, {"checksum_retries": -1}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
