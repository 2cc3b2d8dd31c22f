"""How journaled posts behave: :class:`PostOptions` and its named defaults."""

from __future__ import annotations

from dataclasses import dataclass

from steadypost.journal import DEFAULT_LEASE_S

DEFAULT_VERIFY_WINDOW_S = (15 * 60.0, 30 * 60.0)
DEFAULT_MAX_PROTOCOL_FAILURES = 5
DEFAULT_RECHECK_BASE_S = 30 * 60.0
DEFAULT_RECHECK_CAP_S = 6 * 3600.0
DEFAULT_UNRESOLVED_AFTER_S = 72 * 3600.0


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
