"""The retry budget: a token bucket per host (see :mod:`steadypost.hosts`)."""

from __future__ import annotations

from dataclasses import dataclass

from steadypost.hosts._common import (
    DEFAULT_BUDGET_FAILURE_COST,
    DEFAULT_BUDGET_REFILL_PER_S,
    DEFAULT_BUDGET_SUCCESS_REFUND,
    DEFAULT_BUDGET_TIMEOUT_COST,
    DEFAULT_BUDGET_TOKENS,
)

# --- the retry budget ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BudgetOptions:
    """A per-host retry budget (see the module docstring for the defaults' reasons)."""

    max_tokens: float = DEFAULT_BUDGET_TOKENS
    """The bucket's size; it starts full. Requests stop at half."""
    failure_cost: float = DEFAULT_BUDGET_FAILURE_COST
    """Tokens a failed request costs (a 5xx, 429, 408, a refused connection)."""
    timeout_cost: float = DEFAULT_BUDGET_TIMEOUT_COST
    """Tokens a request that timed out or lost its connection costs."""
    success_refund: float = DEFAULT_BUDGET_SUCCESS_REFUND
    """Tokens every other answer gives back."""
    refill_per_s: float = DEFAULT_BUDGET_REFILL_PER_S
    """Tokens regained per second of time, so an idle process is not shut out forever."""

    def __post_init__(self) -> None:
        if not self.max_tokens > 0:
            raise ValueError("BudgetOptions.max_tokens must be > 0")
        if min(self.failure_cost, self.timeout_cost, self.success_refund) < 0:
            raise ValueError("BudgetOptions costs and refunds must be >= 0")
        if not self.refill_per_s > 0:
            raise ValueError("BudgetOptions.refill_per_s must be > 0")
        if self.failure_cost > self.max_tokens / 2:
            raise ValueError("BudgetOptions.failure_cost must be at most half of max_tokens")


class TokenBucket:
    """A retry budget: failures cost tokens, answers refund some, time refills slowly.

    Not thread-safe by itself (the :class:`HostRegistry` locks). ``now`` is
    any clock's seconds; time going backwards refills nothing.
    """

    def __init__(self, options: BudgetOptions | None = None) -> None:
        self.options = options or BudgetOptions()
        self.tokens = self.options.max_tokens
        self._at: float | None = None

    @property
    def threshold(self) -> float:
        """Half the bucket: a request must leave at least this after paying for its failure."""
        return self.options.max_tokens / 2

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            gained = (now - self._at) * self.options.refill_per_s
            self.tokens = min(self.options.max_tokens, self.tokens + gained)
        if self._at is None or now > self._at:
            self._at = now

    def level(self, now: float) -> float:
        """The tokens in the bucket at ``now``."""
        self._refill(now)
        return self.tokens

    def admits(self, now: float) -> bool:
        """Whether a request may go: paying for its failure leaves at least half the bucket."""
        return self.level(now) - self.options.failure_cost >= self.threshold - 1e-9

    def wait_s(self, now: float) -> float:
        """Seconds until :meth:`admits` is true again (0 if it is now)."""
        missing = self.threshold + self.options.failure_cost - self.level(now)
        return max(0.0, missing / self.options.refill_per_s)

    def charge(self, now: float, *, timeout: bool = False) -> None:
        """A request failed (``timeout``: it timed out or lost its connection)."""
        cost = self.options.timeout_cost if timeout else self.options.failure_cost
        self.tokens = max(0.0, self.level(now) - cost)

    def refund(self, now: float) -> None:
        """A request got an answer that shows the host works."""
        self.tokens = min(self.options.max_tokens, self.level(now) + self.options.success_refund)
