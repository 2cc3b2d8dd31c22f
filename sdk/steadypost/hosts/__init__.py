"""Being a good citizen of a recovering server: a retry budget and a circuit breaker per host.

One upload's backoff is not enough. A daemon with 200 queued posts, or ten
thousand creators' apps, must not hit a struggling server 200 (or 10,000)
times per backoff period, and must not all come back in the same second when
it recovers. Every request of a process therefore goes through one
:class:`HostGuard` per host (keyed by origin, ``scheme://host:port``), which
holds:

* a **retry budget** (:class:`TokenBucket`): every failed request costs
  tokens, every answer refunds a little, and while the bucket is at half or
  below the host gets nothing but the breaker's probes. Like the breaker, it
  lives in the journal's host table when there is one (shared by every process
  on the journal: a fleet of daemons has one budget per host), else per process;
* a **circuit breaker** (:class:`CircuitBreaker`): after
  ``failure_threshold`` consecutive failures it *opens* for a jittered period
  that grows with every failed probe (30 s, 1 min, ... up to 4 min); then it is
  *half-open* and lets exactly one probe request through: an answer closes it,
  a failure opens it again for longer. Its state lives in the journal's host
  table when there is one, so the daemon and the CLI agree;
* the server's ``Retry-After``, on any error answer, pushes back the whole
  host's next attempt, not only that request's.

A refused request is never sent: the driver throws
:class:`~steadypost.errors.HostUnavailableError` (``NOT_DELIVERED``, with
``retry_after``) into the flow, which does not retry it itself; a journaled
post goes back to ``waiting`` with ``next_attempt_at`` = the host's next time.

Defaults, and why
-----------------
The budget has the shape of gRPC's retry throttling (``maxTokens``,
``tokenRatio``: each failure -1, each success +``tokenRatio``, retries stop
while tokens <= max/2; its documented example is 10 and 0.1) with the AWS
SDKs' standard retry mode for scale and for timeouts (a retry quota of 500,
5 per retry, 10 per timeout, 1 back per success: a hundred failed retries,
timeouts costing double). Both always let the *first* attempt of a call go
and throttle only retries. Here a process's queue is itself the retry loop (a
daemon resumes the same posts again and again), so every request to the host
is gated, and the numbers sit between the two:

* **20 tokens, admission while paying for a failure leaves at least half**:
  ten failures in a row from a full bucket (gRPC's example allows five, AWS's
  quota a hundred). Fewer than ten would stop a single upload over a flaky
  link that fails two chunks in three (each failure is followed by a HEAD
  that succeeds); more would let a daemon's queue burn through dozens of
  requests on a sick host before anything holds it back.
* **failure -1, timeout or lost connection -2** (AWS's 2:1: a request that
  timed out held the server's resources longest), **answer +0.1** (gRPC's
  ratio: full speed as long as fewer than about 1 request in 11 fails).
* **+0.1 token per second of time**: a process that sends nothing earns no
  refunds, and since first attempts are gated too it would otherwise never be
  let back in. It keeps at most one failing request per 10 s going to a host
  that fails most, but not all, of its requests (all of them in a row is the
  breaker's case).

The breaker opens after **5 consecutive failures** (Envoy's outlier
detection uses the same ``consecutive_5xx: 5``). The n-th consecutive open
period is drawn uniformly from the upper half of ``min(240 s, 30 s *
2**(n-1))``: 15-30 s, 30-60 s, ... then 120-240 s ("equal jitter", like
Envoy's ejection time growing from a 30 s base with each ejection). Never a
near-zero wait, and a fleet that saw the same outage is spread over minutes,
not seconds. The cap is **240 s**, below the 300 s cap of a single upload's
full-jitter backoff, because it decides how long after a recovery a client
learns of it: at its next probe, at most one open period later. With periods
in 120-240 s that is about 90 s on average and 220 s at the 99th percentile
(``benchmarks/outage.py``: 10,000 clients, 30-minute outage). Full jitter up
to 300 s instead puts the 99th percentile near 270 s, with no room left for a
probe that the recovering server turns away, and sends more requests during
the outage (its waits average 150 s, equal jitter's 180 s). Against a fleet
retrying every 5 s, these defaults send 20 times fewer requests during that
outage. A half-open probe that never reports (its process died) is presumed
lost after 60 s. ``Retry-After`` is obeyed up to an hour (and never longer
than the uploader's own :class:`~steadypost.policy.RetryPolicy` cap).

Everything here is pure: time and randomness are parameters, and storage is
an optional :class:`HostStateStore` (the :class:`~steadypost.journal.Journal`
is one).
"""

from steadypost.hosts._common import (
    BREAKER_KIND,
    DEFAULT_BUDGET_FAILURE_COST,
    DEFAULT_BUDGET_REFILL_PER_S,
    DEFAULT_BUDGET_SUCCESS_REFUND,
    DEFAULT_BUDGET_TIMEOUT_COST,
    DEFAULT_BUDGET_TOKENS,
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_HOST_RETRY_AFTER_CAP_S,
    DEFAULT_OPEN_BASE_S,
    DEFAULT_OPEN_CAP_S,
    DEFAULT_OPEN_JITTER,
    DEFAULT_PROBE_TIMEOUT_S,
    DEFAULT_PROBE_WAIT_S,
    EARLY_S,
    host_name,
)
from steadypost.hosts.breaker import (
    ALLOWED,
    Admission,
    BreakerOptions,
    BreakerPhase,
    BreakerState,
    CircuitBreaker,
)
from steadypost.hosts.budget import (
    BudgetOptions,
    TokenBucket,
)
from steadypost.hosts.guard import (
    HostGuard,
    HostOptions,
    HostRegistry,
    HostStateStore,
    default_registry,
)
from steadypost.origins import origin_of

__all__ = [
    "ALLOWED",
    "BREAKER_KIND",
    "DEFAULT_BUDGET_FAILURE_COST",
    "DEFAULT_BUDGET_REFILL_PER_S",
    "DEFAULT_BUDGET_SUCCESS_REFUND",
    "DEFAULT_BUDGET_TIMEOUT_COST",
    "DEFAULT_BUDGET_TOKENS",
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_HOST_RETRY_AFTER_CAP_S",
    "DEFAULT_OPEN_BASE_S",
    "DEFAULT_OPEN_CAP_S",
    "DEFAULT_OPEN_JITTER",
    "DEFAULT_PROBE_TIMEOUT_S",
    "DEFAULT_PROBE_WAIT_S",
    "EARLY_S",
    "Admission",
    "BreakerOptions",
    "BreakerPhase",
    "BreakerState",
    "BudgetOptions",
    "CircuitBreaker",
    "HostGuard",
    "HostOptions",
    "HostRegistry",
    "HostStateStore",
    "TokenBucket",
    "default_registry",
    "host_name",
    "origin_of",
]
