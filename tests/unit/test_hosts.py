"""The per-host retry budget and circuit breaker, as pure objects on injected time and rng."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from types import MappingProxyType

import pytest

from steadypost import Journal, RetryPolicy
from steadypost.errors import (
    ConnectFailedError,
    ConnectionLostError,
    FileProblemError,
    HostUnavailableError,
    Outcome,
    StatusError,
)
from steadypost.flow import Request, Response, RetryContext, with_retries
from steadypost.hosts import (
    BREAKER_KIND,
    BreakerOptions,
    BreakerPhase,
    BreakerState,
    BudgetOptions,
    CircuitBreaker,
    HostGuard,
    HostOptions,
    HostRegistry,
    TokenBucket,
    default_registry,
    origin_of,
)
from steadypost.hosts.guard import BUDGET_KIND
from steadypost.policy import is_transient, retry_delay

HOST = "https://uploads.example.com:443"
URL = "https://uploads.example.com/files/abc"
T0 = 1_800_000_000.0


def answer(status: int, **headers: str) -> Response:
    return Response(status, MappingProxyType({k.lower().replace("_", "-"): v
                                              for k, v in headers.items()}))  # fmt: skip


def fail(breaker: CircuitBreaker, state: BreakerState, now: float, n: int = 1) -> BreakerState:
    for _ in range(n):
        state = breaker.record(state, now, failed=True)
    return state


# --- the budget -------------------------------------------------------------------------


def test_bucket_admits_ten_failures_from_full_then_refills_with_time() -> None:
    bucket = TokenBucket()
    for _ in range(10):
        assert bucket.admits(T0)
        bucket.charge(T0)
    assert not bucket.admits(T0)
    assert bucket.wait_s(T0) == pytest.approx(10.0)  # one failure's worth at 0.1 token/s
    assert not bucket.admits(T0 + 9.9)
    assert bucket.admits(T0 + 10.0)


def test_bucket_refunds_answers_and_charges_timeouts_double() -> None:
    bucket = TokenBucket(BudgetOptions(refill_per_s=1e-9))
    bucket.charge(T0, timeout=True)
    assert bucket.level(T0) == pytest.approx(18.0)
    bucket.charge(T0)
    assert bucket.level(T0) == pytest.approx(17.0)
    for _ in range(5):
        bucket.refund(T0)
    assert bucket.level(T0) == pytest.approx(17.5)
    for _ in range(100):
        bucket.refund(T0)
    assert bucket.level(T0) == 20.0  # never above full


def test_bucket_ignores_time_going_backwards_and_never_goes_negative() -> None:
    bucket = TokenBucket()
    for _ in range(30):
        bucket.charge(T0, timeout=True)
    assert bucket.level(T0) == 0.0
    assert bucket.level(T0 - 1000) == 0.0  # an earlier reading refills nothing
    assert bucket.level(T0 + 10) == pytest.approx(1.0)


def test_budget_options_are_checked() -> None:
    with pytest.raises(ValueError, match="refill"):
        BudgetOptions(refill_per_s=0)
    with pytest.raises(ValueError, match="half"):
        BudgetOptions(max_tokens=1, failure_cost=1)


# --- the breaker ------------------------------------------------------------------------


def test_breaker_opens_after_five_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(rng=random.Random(1))
    state = fail(breaker, BreakerState(), T0, 4)
    state = breaker.record(state, T0, failed=False)  # an answer resets the count
    state = fail(breaker, state, T0, 4)
    assert state.phase is BreakerPhase.CLOSED
    assert breaker.admit(state, T0)[0].allowed
    state = fail(breaker, state, T0)
    assert state.phase is BreakerPhase.OPEN
    assert state.opens == 1
    assert 15.0 <= state.open_until - T0 <= 30.0
    refused, same = breaker.admit(state, T0 + 10)
    assert not refused.allowed
    assert refused.wait_s == pytest.approx(state.open_until - T0 - 10)
    assert same == state


def test_open_periods_are_jittered_and_grow_to_the_cap() -> None:
    breaker = CircuitBreaker(rng=random.Random(7))
    periods = {n: [breaker.open_period(n) for _ in range(200)] for n in (1, 2, 3, 4, 5, 9, 99)}
    ceilings = {1: 30, 2: 60, 3: 120, 4: 240, 5: 240, 9: 240, 99: 240}
    for n, values in periods.items():
        ceiling = ceilings[n]
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len({round(v, 6) for v in values}) > 150  # jittered, not one value
    assert statistics_mean(periods[2]) > statistics_mean(periods[1])
    full = CircuitBreaker(BreakerOptions(open_jitter=1.0), rng=random.Random(7))
    assert min(full.open_period(5) for _ in range(500)) < 10  # full jitter reaches near 0


def statistics_mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_half_open_lets_exactly_one_probe_through() -> None:
    breaker = CircuitBreaker(rng=random.Random(1))
    state = fail(breaker, BreakerState(), T0, 5)
    later = state.open_until + 0.5
    first, state = breaker.admit(state, later)
    assert first.allowed
    assert first.probe
    assert state.phase is BreakerPhase.HALF_OPEN
    for dt in (0.0, 1.0, 30.0):
        other, same = breaker.admit(state, later + dt)
        assert not other.allowed
        assert other.wait_s <= 15.0
        assert same == state
    # The probe failed: open again, for a longer period.
    state = breaker.record(state, later + 1, failed=True)
    assert state.phase is BreakerPhase.OPEN
    assert state.opens == 2
    assert 30.0 <= state.open_until - (later + 1) <= 60.0
    # The next probe gets an answer: closed, counters reset.
    probe, state = breaker.admit(state, state.open_until)
    assert probe.probe
    state = breaker.record(state, state.open_until + 1, failed=False)
    assert state == BreakerState(not_before=state.not_before)
    assert breaker.admit(state, T0 + 1000)[0] == breaker.admit(BreakerState(), T0)[0]


def test_a_probe_that_never_reports_is_presumed_lost() -> None:
    breaker = CircuitBreaker(rng=random.Random(1))
    state = fail(breaker, BreakerState(), T0, 5)
    _, state = breaker.admit(state, state.open_until)
    lost_at = state.probe_until
    assert not breaker.admit(state, lost_at - 1)[0].allowed
    again, state = breaker.admit(state, lost_at)
    assert again.probe
    assert state.probe_until == lost_at + 60.0


def test_retry_after_pushes_the_host_back_and_is_capped() -> None:
    breaker = CircuitBreaker(BreakerOptions(retry_after_cap_s=600), rng=random.Random(1))
    state = breaker.record(BreakerState(), T0, failed=True, retry_after=120)
    assert state.phase is BreakerPhase.CLOSED  # one failure: not open, but told to wait
    refused = breaker.peek(state, T0 + 60)
    assert not refused.allowed
    assert refused.wait_s == pytest.approx(60)
    assert "Retry-After" in refused.reason
    assert breaker.peek(state, T0 + 119.5).allowed  # up to a second early is fine
    assert breaker.peek(state, T0 + 120).allowed
    capped = breaker.record(BreakerState(), T0, failed=True, retry_after=99_999)
    assert capped.not_before == T0 + 600
    shorter = breaker.record(state, T0, failed=True, retry_after=5)
    assert shorter.not_before == T0 + 120  # a shorter Retry-After never shortens the wait


def test_a_late_failure_does_not_extend_an_open_breaker() -> None:
    breaker = CircuitBreaker(rng=random.Random(1))
    state = fail(breaker, BreakerState(), T0, 5)
    late = breaker.record(state, T0 + 3, failed=True)
    assert late.open_until == state.open_until
    assert late.opens == 1


def test_breaker_state_round_trips_through_json() -> None:
    breaker = CircuitBreaker(rng=random.Random(1))
    state = fail(breaker, BreakerState(), T0, 5)
    state = breaker.record(state, T0, failed=True, retry_after=30)
    assert BreakerState.from_json(state.to_json()) == state
    assert BreakerState.from_json(None) == BreakerState()
    assert BreakerState.from_json({"phase": "sideways"}) == BreakerState()
    assert BreakerState.from_json({"failures": "many"}) == BreakerState()


def test_breaker_options_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        BreakerOptions(failure_threshold=0)
    with pytest.raises(ValueError, match="open_base_s"):
        BreakerOptions(open_base_s=500)
    with pytest.raises(ValueError, match="jitter"):
        BreakerOptions(open_jitter=2)


# --- the guard ----------------------------------------------------------------------------


def test_origins_are_normalised() -> None:
    assert origin_of("https://Uploads.Example.com/files/x?y=1") == HOST
    assert origin_of("http://127.0.0.1:8080/a") == "http://127.0.0.1:8080"
    assert origin_of("http://[::1]/a") == "http://[::1]:80"


def test_guard_refuses_after_an_outage_with_a_clear_message() -> None:
    guard = HostRegistry(rng=random.Random(3)).guard()
    for n in range(5):
        assert guard.admit(URL, T0 + n) is None
        guard.record(URL, answer(503), None, T0 + n)
    refusal = guard.admit(URL, T0 + 5)
    assert isinstance(refusal, HostUnavailableError)
    assert refusal.outcome is Outcome.NOT_DELIVERED
    assert refusal.host == "uploads.example.com"
    state = guard.registry.state(URL)
    assert refusal.retry_after == pytest.approx(state.open_until - (T0 + 5))
    assert str(refusal).startswith("uploads.example.com is recovering: circuit open, next probe in")
    assert str(refusal).endswith(" s")
    # another host is not affected
    assert guard.admit("https://other.example.com/x", T0 + 5) is None


def test_the_probe_bypasses_an_empty_budget_and_an_answer_closes_the_breaker() -> None:
    registry = HostRegistry(rng=random.Random(3))
    guard = registry.guard()
    for _ in range(10):  # timeouts: the budget is empty long before the breaker's time is up
        guard.record(URL, None, ConnectionLostError("timed out"), T0)
    assert registry.bucket(URL).level(T0) == 0.0
    state = registry.state(URL)
    assert state.phase is BreakerPhase.OPEN
    assert guard.admit(URL, state.open_until) is None  # the probe
    assert guard.admit(URL, state.open_until) is not None  # only one
    guard.record(URL, answer(201), None, state.open_until + 0.2)
    assert registry.state(URL).phase is BreakerPhase.CLOSED
    refusal = guard.admit(URL, state.open_until + 0.3)  # closed, but the budget is still low
    assert refusal is not None
    assert "retry budget spent" in str(refusal)


def test_only_trouble_counts_as_failure() -> None:
    registry = HostRegistry(rng=random.Random(3))
    guard = registry.guard()
    for status in (404, 409, 410, 412, 460, 400, 301, 204):
        guard.record(URL, answer(status), None, T0)
    guard.record(URL, None, FileProblemError("the file is gone"), T0)  # local: ignored
    assert registry.state(URL) == BreakerState()
    for status in (408, 429, 500, 502, 503, 504):
        guard.record(URL, answer(status), None, T0)
    guard.record(URL, None, ConnectFailedError("refused"), T0)
    state = registry.state(URL)
    assert (state.phase, state.failures, state.opens) == (BreakerPhase.OPEN, 7, 1)


def test_retry_after_on_any_answer_pushes_every_request_to_that_host() -> None:
    registry = HostRegistry(rng=random.Random(3))
    guard = registry.guard()
    guard.record(URL, answer(429, retry_after="90"), None, T0)
    refusal = guard.admit("https://uploads.example.com/files/another-upload", T0 + 1)
    assert refusal is not None
    assert refusal.retry_after == pytest.approx(89)
    assert "Retry-After" in str(refusal)
    assert guard.check(URL, T0 + 90) is None
    # the uploader's own cap applies too
    capped = HostRegistry(rng=random.Random(3)).guard(retry_after_cap_s=60)
    capped.record(URL, answer(503, retry_after="600"), None, T0)
    assert capped.registry.state(URL).not_before == T0 + 60


def test_check_takes_no_probe() -> None:
    registry = HostRegistry(rng=random.Random(3))
    guard = registry.guard()
    for _ in range(5):
        guard.record(URL, answer(503), None, T0)
    until = registry.state(URL).open_until
    assert guard.check(URL, T0 + 1) is not None
    assert guard.check(URL, until) is None
    assert guard.check(URL, until) is None  # still nobody took the probe
    assert guard.admit(URL, until) is None
    assert guard.check(URL, until) is not None


def test_host_unavailable_is_never_retried_by_a_flow_and_sets_the_post_time() -> None:
    policy = RetryPolicy()
    exc = HostUnavailableError("x is recovering", host="x", retry_after=93.0)
    assert not is_transient(policy, exc)
    assert retry_delay(exc, 7, policy=policy, rng=random.Random(1)) == 93.0
    calls = []

    def attempt():  # type: ignore[no-untyped-def]
        calls.append(1)
        yield Request("GET", URL)
        raise AssertionError("not reached")

    ctx = RetryContext(policy=policy, clock=lambda: T0, rng=random.Random(1))
    flow = with_retries(attempt, ctx)
    assert isinstance(next(flow), Request)
    with pytest.raises(HostUnavailableError):
        flow.throw(exc)
    assert calls == [1]
    busy = StatusError("busy", status=503, retry_after=40.0, outcome=Outcome.NOT_DELIVERED)
    assert retry_delay(busy, 1, policy=policy, rng=random.Random(1)) == 40.0


# --- persistence: the journal's host table ---------------------------------------------------


def test_breaker_state_is_shared_through_the_journal(journal_target: str) -> None:
    path = journal_target
    with Journal(path, clock=lambda: T0) as daemon_journal, Journal(
        path, clock=lambda: T0
    ) as cli_journal:
        daemon = HostRegistry(rng=random.Random(1)).guard(daemon_journal)
        cli = HostRegistry(rng=random.Random(2)).guard(cli_journal)  # another process
        for _ in range(5):
            assert daemon.admit(URL, T0) is None
            daemon.record(URL, answer(503), None, T0)
        stored = BreakerState.from_json(cli_journal.get_host_state(HOST, BREAKER_KIND))
        assert stored.phase is BreakerPhase.OPEN
        refusal = cli.admit(URL, T0 + 1)
        assert refusal is not None
        assert "circuit open" in str(refusal)
        # exactly one of the two takes the half-open probe
        assert cli.admit(URL, stored.open_until) is None
        assert daemon.admit(URL, stored.open_until) is not None
        cli.record(URL, answer(204), None, stored.open_until + 1)
        assert daemon.admit(URL, stored.open_until + 2) is None
        assert daemon.registry.state(URL).phase is BreakerPhase.CLOSED
        assert BreakerState.from_json(
            daemon_journal.get_host_state(HOST, BREAKER_KIND)
        ) == BreakerState()


def _write_spy(path: Path, writes: list[str]) -> Journal:
    """A journal that notes the kind of every host-state write into ``writes``."""

    class Spy(Journal):
        def update_host_state(self, host, kind, update):  # type: ignore[no-untyped-def]
            writes.append(kind)
            return super().update_host_state(host, kind, update)

    return Spy(path, clock=lambda: T0)


def test_an_answer_on_a_healthy_host_writes_nothing(tmp_path: Path) -> None:
    writes: list[str] = []
    with _write_spy(tmp_path / "j.sqlite3", writes) as journal:
        guard = HostRegistry(rng=random.Random(1)).guard(journal)
        for n in range(20):
            assert guard.admit(URL, T0 + n) is None
            guard.record(URL, answer(204), None, T0 + n)
        assert writes == []
        guard.record(URL, answer(503), None, T0 + 30)
        assert writes == [BUDGET_KIND, BREAKER_KIND]


def test_that_a_host_answered_is_written_once_per_process(tmp_path: Path) -> None:
    writes: list[str] = []
    with _write_spy(tmp_path / "j.sqlite3", writes) as journal:
        guard = HostRegistry(rng=random.Random(1)).guard(journal)
        for n in range(50):  # every answer of a healthy platform says so
            guard.mark_answered(URL, T0 + n)
        assert writes == ["answered"]
        assert HostRegistry().guard(journal).answered(URL)  # another process reads it


def test_the_retry_budget_is_shared_through_the_journal(journal_target: str) -> None:
    """Ten failures from full empty the host's budget for every process on the journal."""
    with Journal(journal_target, clock=lambda: T0) as a_journal, \
            Journal(journal_target, clock=lambda: T0) as b_journal:  # fmt: skip
        patient = HostOptions(breaker=BreakerOptions(failure_threshold=100))  # the budget alone
        a = HostRegistry(patient, rng=random.Random(1)).guard(a_journal)
        b = HostRegistry(patient, rng=random.Random(2)).guard(b_journal)  # another process
        for n in range(10):  # alternately, so neither process's own count would be enough
            (a if n % 2 else b).record(URL, None, ConnectFailedError("refused"), T0)
        refusal = b.check("https://uploads.example.com/other", T0)
        assert refusal is not None
        assert "retry budget spent" in str(refusal)
        assert a.registry.bucket(URL).level(T0) == b.registry.bucket(URL).level(T0) == 10.0
        # time refills it for both
        assert a.check(URL, T0 + 20) is None
        assert b.check(URL, T0 + 20) is None


def test_late_answers_from_before_the_breaker_opened_do_not_close_it(journal_target: str) -> None:
    """Sixteen workers' requests were in flight as the outage began: some answers come late."""
    with Journal(journal_target, clock=lambda: T0) as journal:
        guards = [HostRegistry(rng=random.Random(n)).guard(journal) for n in range(4)]
        for n in range(5):
            guards[n % 4].record(URL, answer(503), None, T0 + n / 100)
        assert guards[0].registry.state(URL).phase is BreakerPhase.OPEN
        for g in guards:  # answered before the outage, recorded after: says nothing now
            g.record(URL, answer(204), None, T0 + 0.1)
        opened = BreakerState.from_json(journal.get_host_state(HOST, BREAKER_KIND))
        assert opened.phase is BreakerPhase.OPEN
        assert all(g.admit(URL, T0 + 0.2) is not None for g in guards)
        # The probe's answer does close it.
        assert guards[2].admit(URL, opened.open_until) is None
        guards[2].record(URL, answer(204), None, opened.open_until + 0.1)
        assert guards[1].admit(URL, opened.open_until + 0.2) is None


def test_a_fleet_takes_one_probe_per_breaker_period(journal_target: str) -> None:
    """Eight processes' guards on one journal, all asking at the moment the breaker half-opens."""
    journals = [Journal(journal_target, clock=lambda: T0) for _ in range(8)]
    try:
        guards = [HostRegistry(rng=random.Random(n)).guard(j) for n, j in enumerate(journals)]
        for _ in range(5):
            guards[0].record(URL, answer(503), None, T0)
        opened = BreakerState.from_json(journals[0].get_host_state(HOST, BREAKER_KIND))
        barrier = threading.Barrier(len(guards))
        admitted: list[object] = []

        def ask(guard: HostGuard) -> None:
            barrier.wait()
            admitted.append(guard.admit(URL, opened.open_until))

        threads = [threading.Thread(target=ask, args=(g,)) for g in guards]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(a is None for a in admitted) == 1  # one probe for the whole fleet
        guards[3].record(URL, answer(503), None, opened.open_until + 1)  # someone's probe failed
        reopened = BreakerState.from_json(journals[5].get_host_state(HOST, BREAKER_KIND))
        assert reopened.phase is BreakerPhase.OPEN
        assert reopened.opens == opened.opens + 1  # a longer period, for everybody
        assert all(g.admit(URL, opened.open_until + 2) is not None for g in guards)
    finally:
        for j in journals:
            j.close()


def test_a_closed_journal_falls_back_to_memory(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3", clock=lambda: T0)
    journal.close()
    guard = HostRegistry(rng=random.Random(1)).guard(journal)
    for _ in range(5):
        guard.record(URL, answer(503), None, T0)
    assert guard.admit(URL, T0 + 1) is not None


def test_the_default_registry_is_one_per_journal_and_clock(tmp_path: Path) -> None:
    def clock() -> float:
        return T0

    a = default_registry(tmp_path / "a.sqlite3", clock)
    assert default_registry(tmp_path / "a.sqlite3", clock) is a
    assert default_registry(tmp_path / "b.sqlite3", clock) is not a
    assert default_registry(tmp_path / "a.sqlite3") is not a  # the system clock: another world
    assert isinstance(a.options, HostOptions)
