"""FakeClock, the fault rules as values, and the Faults container."""

from __future__ import annotations

import threading

import pytest

import steadypost.testing as testing
from steadypost.testing import (
    BadUploadOffset,
    FakeClock,
    Faults,
    Outage,
    ProcessedButError,
    ProcessedButTimeout,
    RejectMedia,
    ResetMidChunk,
    Respond,
    SlowProcessing,
)

# --- FakeClock -----------------------------------------------------------------------------------


def test_clock_starts_at_the_given_time_and_only_moves_when_told() -> None:
    assert FakeClock().now() == FakeClock.DEFAULT_START
    clock = FakeClock(start=100.0)
    assert clock.now() == 100.0
    assert clock.advance(30) == 130.0
    assert clock.advance_to(200) == 200.0
    assert clock.advance_to(150) == 200.0  # never backwards
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_sleep_advances_instantly_and_is_recorded() -> None:
    clock = FakeClock(start=0)
    clock.sleep(1800)
    clock.sleep(0.5)
    assert clock.now() == 1800.5
    assert clock.sleeps == [1800, 0.5]
    with pytest.raises(ValueError, match="non-negative"):
        clock.sleep(-1)


async def test_async_sleep() -> None:
    clock = FakeClock(start=0)
    await clock.asleep(42)
    assert (clock.now(), clock.sleeps) == (42, [42])


def test_clock_is_thread_safe() -> None:
    clock = FakeClock(start=0)

    def work() -> None:
        for _ in range(1000):
            clock.sleep(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == 8000
    assert len(clock.sleeps) == 8000


def test_clock_listeners() -> None:
    clock = FakeClock(start=0)
    seen: list[float] = []
    unsubscribe = clock.subscribe(seen.append)
    clock.advance(5)
    clock.sleep(1)
    unsubscribe()
    clock.advance(1)
    assert seen == [5, 6]


# --- rules are small validated values -------------------------------------------------------------


def test_rules_are_frozen_hashable_values() -> None:
    rule = Respond(status=423, times=2, methods={"patch"})
    assert rule.methods == frozenset({"PATCH"})
    assert rule == Respond(status=423, times=2, methods=["PATCH"])
    assert len({rule, Respond(status=423, times=2, methods="PATCH")}) == 1
    with pytest.raises(AttributeError):
        rule.status = 500  # type: ignore[misc]
    assert ProcessedButError(on="final_patch").on == frozenset({"final_patch"})


@pytest.mark.parametrize(
    "build",
    [
        lambda: Outage(10, 5),
        lambda: Outage(0, 5, mode="down"),  # type: ignore[arg-type]
        lambda: Respond(status=99),
        lambda: Respond(status=500, times=-1),
        lambda: Respond(status=500, start=10, end=5),
        lambda: ResetMidChunk(after_bytes=-1),
        lambda: ProcessedButError(on={"upload"}),
        lambda: ProcessedButTimeout(on={"nope"}),
        lambda: BadUploadOffset(report="sideways"),  # type: ignore[arg-type]
        lambda: SlowProcessing(seconds=-1),
    ],
)
def test_invalid_rules_are_refused(build: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        build()  # type: ignore[operator]


def test_rule_defaults() -> None:
    assert Outage(0, 1).mode == "503"
    assert Respond(status=500).times == 1
    assert ResetMidChunk(after_bytes=1).methods == frozenset({"PATCH"})
    assert ProcessedButError().on == frozenset({"publish"})
    assert ProcessedButTimeout().hold_s == testing.DEFAULT_HOLD_S
    assert BadUploadOffset().methods == frozenset({"HEAD", "PATCH"})
    assert RejectMedia().retryable is False
    assert RejectMedia().times is None


# --- Faults --------------------------------------------------------------------------------------


def test_faults_count_windows_and_order() -> None:
    first = Respond(status=500, times=1)
    second = Respond(status=502, times=None, start=10, end=20)
    faults = Faults([first, second])

    assert faults.take(Respond, 0) == first
    assert faults.take(Respond, 0) is None  # first is used up, second not active yet
    assert faults.take(Respond, 10) == second
    assert faults.take(Respond, 19.9) == second
    assert faults.take(Respond, 20) is None
    assert (faults.fired(first), faults.fired(second)) == (1, 2)
    assert faults.take(Respond, 15, lambda r: r.status == 418) is None
    assert faults.active(Respond, 15) == [second]
    assert faults.rules == (first, second)


def test_faults_notify_listeners() -> None:
    faults = Faults()
    calls: list[str] = []
    unsubscribe = faults.subscribe(lambda: calls.append("changed"))
    faults.add(Respond(status=500))
    faults.clear()
    unsubscribe()
    faults.add(Respond(status=500))
    assert calls == ["changed", "changed"]


def test_public_names() -> None:
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    assert "FakeClock" in (testing.__doc__ or "")
