"""Defaults and origin helpers shared by the budget, the breaker and the guard."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit

from steadypost.policy import HOST_FAILURE_STATUSES

T = TypeVar("T")

DEFAULT_BUDGET_TOKENS = 20.0
DEFAULT_BUDGET_FAILURE_COST = 1.0
DEFAULT_BUDGET_TIMEOUT_COST = 2.0
DEFAULT_BUDGET_SUCCESS_REFUND = 0.1
DEFAULT_BUDGET_REFILL_PER_S = 0.1

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_OPEN_BASE_S = 30.0
DEFAULT_OPEN_CAP_S = 240.0
DEFAULT_OPEN_JITTER = 0.5
DEFAULT_PROBE_TIMEOUT_S = 60.0
DEFAULT_PROBE_WAIT_S = 15.0

DEFAULT_HOST_RETRY_AFTER_CAP_S = 3600.0
#: Answers that say the host is in trouble (the table is policy.HOST_FAILURE_STATUSES).
DEFAULT_FAILURE_STATUSES = HOST_FAILURE_STATUSES

#: A request this many seconds early for its host's next time is let through.
EARLY_S = 1.0

#: The journal host-table ``kind`` of a breaker's state.
BREAKER_KIND = "breaker"
#: The journal host-table ``kind`` that says an origin once answered like the platform.
ANSWERED_KIND = "answered"


def host_name(origin: str) -> str:
    """The host of an origin, as shown to people (``uploads.example.com``)."""
    return urlsplit(origin).hostname or origin
