"""``benchmarks/outage.py`` simulates what the SDK really does (small, fast runs)."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "outage.py"


@pytest.fixture(scope="module")
def outage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("outage_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["outage_bench"] = module
    spec.loader.exec_module(module)
    logging.getLogger("steadypost").setLevel(logging.ERROR)
    return module


def params(outage: ModuleType, engine: str, **kw: object) -> object:
    values = {"clients": 150, "outage_s": 600.0, "capacity": 10, "arrival_s": 60.0,
              "retry_after": None, "seed": 11, "engine": engine}  # fmt: skip
    values.update(kw)
    return outage.Params(**values)


@pytest.mark.parametrize("policy", ["steadypost", "steadypost-backoff-only"])
@pytest.mark.parametrize("retry_after", [None, 120])
def test_the_fast_engine_sends_exactly_what_the_sdk_flows_send(
    outage: ModuleType, policy: str, retry_after: int | None
) -> None:
    fast = outage.run_fleet(policy, params(outage, "fast", retry_after=retry_after))
    flow = outage.run_fleet(policy, params(outage, "flow", retry_after=retry_after))
    fast.pop("sim_seconds")
    flow.pop("sim_seconds")
    assert fast == flow
    assert fast["unfinished"] == 0


@pytest.mark.parametrize("workers", [4, 200])
def test_the_daemon_sends_one_probe_per_breaker_period(
    outage: ModuleType, workers: int
) -> None:
    fast = outage.run_daemon("steadypost", params(outage, "fast"), 60, workers)
    flow = outage.run_daemon("steadypost", params(outage, "flow"), 60, workers)
    fast.pop("sim_seconds")
    flow.pop("sim_seconds")
    assert fast == flow
    assert fast["max_requests_in_a_period"] == 1
    assert fast["breaker_periods"] >= 4
    # the first requests (at most one per post in flight), then one per period
    assert fast["requests_during_outage"] <= min(workers, 60) + 5 + fast["breaker_periods"]
    assert fast["unfinished"] == 0


def test_fixed_fleets_are_fast_forwarded_exactly(outage: ModuleType) -> None:
    for offsets, period in ([0.0], 1.0), ([0.0], 5.0), outage.tus_js_schedule():
        for start in (0.0, 0.3, 4.99, 13.0):
            counted = outage.Server(600.0, 10, None)
            world = outage.World(counted)
            client = outage.ScheduleClient(world, start, offsets, period, lambda t: None)
            client.fast_forward(600.0)
            naive, t, n = 0, start, 0
            while t < 600.0:  # every request, one by one
                naive += 1
                n += 1
                t = start + (n // len(offsets)) * period + offsets[n % len(offsets)]
            assert counted.during_outage == naive
            assert client.next_time() >= 600.0


def test_the_benchmark_meets_its_targets_on_a_small_fleet(outage: ModuleType) -> None:
    p = params(outage, "fast", clients=1000, outage_s=1800.0, capacity=20)
    rows = {name: outage.run_fleet(name, p) for name in ("fixed-1s", "fixed-5s", "steadypost")}
    daemon = outage.run_daemon("steadypost", p, 200, 8)
    checks = {c["target"]: c for c in outage.check_targets(rows, daemon)}
    assert all(c["met"] for c in checks.values()), checks
