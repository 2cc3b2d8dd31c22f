"""The outage fleet: how hard do clients hit a server that is down, and then coming back?

A discrete-event simulation on a virtual clock (a heap of events; nothing sleeps).
The server is down (every request answered 503, without ``Retry-After`` unless
``--retry-after``) for ``--outage-min`` minutes from t = 0, then recovers with a
capacity of ``--capacity`` requests per second: within each second, requests beyond
that are answered 503 too. An upload is modelled as one request that either
succeeds or fails (the first request of a real upload is the one that meets the
outage; the rest follow on a healthy server).

Scenario 1, the fleet: ``--clients`` creators' apps each owe one upload and start
at a uniformly random moment in the first ``--arrival-s`` seconds. Every app is its
own process. Policies compared:

``fixed-1s`` / ``fixed-5s``
    retry every 1 s / 5 s until it works.
``tus-js-client``
    its default ``retryDelays`` ``[0, 1000, 3000, 5000]`` ms: four retries, then the
    upload fails; modelled as the user clicking "retry" 5 s after each failure,
    which starts the same five attempts again (5 requests every 14 s).
``steadypost-backoff-only``
    steadypost's own flow machinery *without* the per-host guard (what it did
    before the breaker): full-jitter backoff (base 1 s, cap 300 s), 12 attempts
    per run, then the post waits in the journal for its post-level backoff.
``steadypost``
    the real thing: every app has its own :class:`steadypost.hosts.HostRegistry`
    (circuit breaker + retry budget) consulted through the drivers' own
    admission code; a refused post waits in the journal until the host's time.

The steadypost rows are not a re-implementation: each post runs
``steadypost.flow.with_retries`` over an attempt flow that raises
``steadypost.platforms.tus.status_error``, pumped by the drivers' ``_Pump`` with a
``HostGuard`` (``admit`` before each request, ``record`` after it, exactly as
``run_sync`` does), the uploader's pre-check ``HostGuard.check``, and
``steadypost.policy.retry_delay`` for the journal's ``next_attempt_at``. Only the
network and the journal are replaced by the simulated server and the event heap.
The fixed-interval fleets are deterministic while the server is down, so they are
fast-forwarded to the recovery (their outage requests are counted exactly); every
request after it goes through the simulated server one by one.

Scenario 2, the daemon: one process (one shared breaker and budget) with
``--daemon-posts`` posts queued at t = 0, all in flight at once (an asyncio daemon;
``--daemon-workers`` bounds it), through the same outage: requests sent during the
outage, the breaker's open periods, and the most requests sent in one period.

    python benchmarks/outage.py                      # 10,000 clients, 30 min, 100 rps
    python benchmarks/outage.py --json
    python benchmarks/outage.py --clients 2000 --outage-min 10 --capacity 50

Targets (printed with the table): with 10,000 clients and a 30-minute outage,
steadypost sends >= 50x fewer requests during the outage than fixed-1s and >= 15x
fewer than fixed-5s; its peak requests per second in the first 10 s after recovery
is <= 1 % of the pending clients; its p99 extra completion time after recovery is
<= 300 s; the daemon sends at most one request per breaker period.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import heapq
import itertools
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from steadypost.drivers.pump import _Pump
from steadypost.errors import RetriesExhaustedError, SteadypostError
from steadypost.flow import Flow, NullObserver, Request, Response, RetryContext, Sleep, with_retries
from steadypost.hosts import BreakerPhase, HostGuard, HostRegistry, origin_of
from steadypost.platforms.http import status_error
from steadypost.policy import RetryPolicy, is_transient, retry_delay, retry_wait

UPLOAD_URL = "https://uploads.example.com/files/upload-1"
ORIGIN = origin_of(UPLOAD_URL)
REQUEST = Request("PATCH", UPLOAD_URL)
HORIZON_AFTER_RECOVERY_S = 6 * 3600.0
TUS_JS_DELAYS_S = (0.0, 1.0, 3.0, 5.0)
USER_RETRY_S = 5.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the world: a virtual clock, an event heap, a server -----------------------------


class Server:
    """Down until ``recovers_at``; then ``capacity`` requests per second, the rest 503."""

    def __init__(self, recovers_at: float, capacity: int, retry_after: int | None) -> None:
        self.recovers_at = recovers_at
        self.capacity = capacity
        headers = {"retry-after": str(retry_after)} if retry_after else {}
        self.busy = Response(503, MappingProxyType(headers))
        self.ok = Response(204, MappingProxyType({}))
        self.during_outage = 0
        self.per_second: dict[int, int] = {}

    def handle(self, t: float) -> Response:
        if t < self.recovers_at:
            self.during_outage += 1
            return self.busy
        second = int(t)
        n = self.per_second.get(second, 0) + 1
        self.per_second[second] = n
        return self.ok if n <= self.capacity else self.busy

    def after_recovery(self) -> int:
        return sum(self.per_second.values())

    def peak_rps(self, seconds: int) -> int:
        start = math.ceil(self.recovers_at)
        return max((self.per_second.get(s, 0) for s in range(start, start + seconds)), default=0)


class World:
    """The virtual clock and the event heap."""

    def __init__(self, server: Server) -> None:
        self.now = 0.0
        self.server = server
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    def at(self, t: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), action))

    def run(self, until: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= until:
            t, _, action = heapq.heappop(heap)
            self.now = t
            action()


# --- fixed-schedule clients (fixed interval, tus-js-client) -----------------------------


class ScheduleClient:
    """Retries on a fixed schedule: requests at ``offsets`` within every ``period`` seconds."""

    def __init__(self, world: World, start: float, offsets: Sequence[float], period: float,
                 done: Callable[[float], None]) -> None:  # fmt: skip
        self.world, self.offsets, self.period, self.done = world, offsets, period, done
        self.cycle_start, self.index = start, 0

    def fast_forward(self, until: float) -> None:
        """Skip (and count) the requests before ``until``: all fail while the server is down."""
        first_cycles = max(0, math.floor((until - self.cycle_start) / self.period) - 1)
        self.world.server.during_outage += first_cycles * len(self.offsets)
        self.cycle_start += first_cycles * self.period
        while self.next_time() < until:
            self.world.server.during_outage += 1
            self._advance()
        self.world.at(self.next_time(), self.fire)

    def next_time(self) -> float:
        return self.cycle_start + self.offsets[self.index]

    def _advance(self) -> None:
        self.index += 1
        if self.index == len(self.offsets):
            self.index, self.cycle_start = 0, self.cycle_start + self.period

    def fire(self) -> None:
        if self.world.server.handle(self.world.now).status < 300:
            self.done(self.world.now)
            return
        self._advance()
        self.world.at(self.next_time(), self.fire)


def tus_js_schedule() -> tuple[list[float], float]:
    offsets, t = [0.0], 0.0
    for delay in TUS_JS_DELAYS_S:
        t += delay
        offsets.append(t)
    return offsets, t + USER_RETRY_S


# --- steadypost posts, driven by the SDK's own flow, driver and guard code -------------


def upload_attempt(clock: Callable[[], float]) -> Flow[Response]:
    """One attempt: the request, and the SDK's own error for a bad answer."""
    response: Response = yield REQUEST
    if response.status >= 300:
        raise status_error(REQUEST, response, now=clock(), what="sending bytes failed")
    return response


def _never_cancelled() -> None:
    return None


class SimPost:
    """One journaled post as :class:`steadypost.Uploader` runs it, on the virtual clock.

    ``guard`` ``None`` is steadypost without the per-host guard.
    """

    observer = NullObserver()

    def __init__(self, world: World, guard: HostGuard | None, rng: random.Random,
                 policy: RetryPolicy, *, latency_s: float = 0.0,
                 done: Callable[[SimPost], None], waiting: Callable[[SimPost, float], None],
                 ) -> None:  # fmt: skip
        self.world, self.guard, self.rng, self.policy = world, guard, rng, policy
        self.latency_s = latency_s
        self.on_done, self.on_waiting = done, waiting
        self.attempts = 0  # the journal's post.attempts
        self.pump: _Pump[Response] | None = None
        self.finished_at: float | None = None

    def start(self) -> None:
        """``Uploader.upload_post``: the host pre-check, then the flow."""
        world = self.world
        if self.guard is not None:
            refusal = self.guard.check(ORIGIN, world.now)
            if refusal is not None:
                self._wait(refusal)
                return
        ctx = RetryContext(
            policy=self.policy, clock=world.clock, rng=self.rng,
            deadline=None if self.policy.deadline_s is None
            else world.now + self.policy.deadline_s,
        )  # fmt: skip
        flow = with_retries(lambda: upload_attempt(world.clock), ctx)
        self.pump = _Pump(flow, self.observer, _never_cancelled, self.guard, world.clock)
        self.resume()

    def resume(self) -> None:
        """``run_sync``'s loop, with the simulated server instead of httpx."""
        pump = self.pump
        assert pump is not None
        world = self.world
        while True:
            try:
                effect = pump.next_io()
            except SteadypostError as exc:  # the flow gave up: PostRun.failed -> waiting
                self._wait(exc)
                return
            if effect is None:
                self.finished_at = world.now
                self.on_done(self)
                return
            if isinstance(effect, Sleep):
                world.at(world.now + effect.seconds, self.resume)
                return
            if not pump.admit(effect):
                continue
            response = world.server.handle(world.now)
            if self.latency_s:
                world.at(world.now + self.latency_s,
                         functools.partial(self._answer, effect, response))  # fmt: skip
                return
            pump.settle(effect, response, None, 0.0)

    def _answer(self, request: Request, response: Response) -> None:
        assert self.pump is not None
        self.pump.settle(request, response, None, 0.0)
        self.resume()

    def _wait(self, exc: SteadypostError) -> None:
        self.attempts += 1
        self.pump = None
        delay = retry_delay(exc, self.attempts, policy=self.policy, rng=self.rng)
        self.on_waiting(self, self.world.now + delay)


class FastPost(SimPost):
    """:class:`SimPost` without the generator and tenacity machinery, for speed.

    It calls the same policy objects in the same order as ``with_retries`` under
    ``_Pump`` does (guard ``admit`` / ``record``, ``status_error``, ``is_transient``,
    ``retry_wait``, then tenacity's stop rules: ``max_attempts``, then the deadline),
    so with the same seed it sends the very same requests at the very same times;
    ``tests/test_hosts_outage.py`` checks that against :class:`SimPost`.
    """

    def start(self) -> None:
        world = self.world
        if self.guard is not None:
            refusal = self.guard.check(ORIGIN, world.now)
            if refusal is not None:
                self._wait(refusal)
                return
        deadline_s = self.policy.deadline_s
        self.deadline = None if deadline_s is None else world.now + deadline_s
        self.attempt_number = 0
        self._attempt()

    def _attempt(self) -> None:
        world = self.world
        self.attempt_number += 1
        if self.guard is not None:
            refusal = self.guard.admit(ORIGIN, world.now)
            if refusal is not None:  # never retried by the flow: the post waits
                self._wait(refusal)
                return
        response = world.server.handle(world.now)
        if self.latency_s:
            world.at(world.now + self.latency_s, lambda: self._outcome(response))
        else:
            self._outcome(response)

    def _outcome(self, response: Response) -> None:
        # The guard hears of an answer once the flow has read it (``_Pump._judge``): after
        # the flow drew its wait, so the random draws come in the flow's order.
        world = self.world
        if response.status < 300:
            self._record(response)
            self.finished_at = world.now
            self.on_done(self)
            return
        exc = status_error(REQUEST, response, now=world.now, what="sending bytes failed")
        if not is_transient(self.policy, exc):
            self._record(response)
            self._wait(exc)
            return
        sleep = retry_wait(self.policy, self.attempt_number, retry_after=exc.retry_after,
                           rng=self.rng)  # fmt: skip
        self._record(response)
        if self.attempt_number >= self.policy.max_attempts or (
            self.deadline is not None and world.now + sleep > self.deadline
        ):
            gave_up = RetriesExhaustedError("gave up", outcome=exc.outcome,
                                            attempts=self.attempt_number)  # fmt: skip
            gave_up.__cause__ = exc
            self._wait(gave_up)
            return
        world.at(world.now + sleep, self._attempt)


    def _record(self, response: Response) -> None:
        if self.guard is not None:
            self.guard.record(ORIGIN, response, None, self.world.now)


ENGINES: dict[str, type[SimPost]] = {"fast": FastPost, "flow": SimPost}


# --- scenario 1: the fleet --------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    clients: int
    outage_s: float
    capacity: int
    arrival_s: float
    retry_after: int | None
    seed: int
    engine: str = "fast"


def run_fleet(policy: str, p: Params) -> dict[str, Any]:
    started = time.perf_counter()
    server = Server(p.outage_s, p.capacity, p.retry_after)
    world = World(server)
    rng = random.Random(p.seed)
    arrivals = [rng.uniform(0.0, p.arrival_s) for _ in range(p.clients)]
    completions: list[float] = []

    def done_at(t: float) -> None:
        completions.append(t)

    if policy in ("fixed-1s", "fixed-5s", "tus-js-client"):
        if policy == "tus-js-client":
            offsets, period = tus_js_schedule()
        else:
            offsets, period = [0.0], float(policy.removeprefix("fixed-").removesuffix("s"))
        for t0 in arrivals:
            ScheduleClient(world, t0, offsets, period, done_at).fast_forward(p.outage_s)
    else:
        retry = RetryPolicy()

        def done(post: SimPost) -> None:
            completions.append(world.now)

        def waiting(post: SimPost, when: float) -> None:
            world.at(when, post.start)

        for t0 in arrivals:
            # One process per app: its own registry (breaker + budget).
            guard = HostRegistry(rng=rng).guard() if policy == "steadypost" else None
            post = ENGINES[p.engine](world, guard, rng, retry, done=done, waiting=waiting)
            world.at(t0, post.start)
    world.run(p.outage_s + HORIZON_AFTER_RECOVERY_S)
    pending = p.clients - sum(1 for t in completions if t < p.outage_s)
    extra = sorted(t - p.outage_s for t in completions if t >= p.outage_s)
    extra += [math.inf] * (p.clients - len(completions))
    peak = server.peak_rps(10)
    return {
        "policy": policy,
        "requests_during_outage": server.during_outage,
        "requests_after_recovery": server.after_recovery(),
        "pending_at_recovery": pending,
        "peak_rps_after_recovery": peak,
        "peak_rps_share_of_pending": peak / pending if pending else 0.0,
        "p50_extra_s": quantile(extra, 0.50),
        "p99_extra_s": quantile(extra, 0.99),
        "max_extra_s": extra[-1] if extra else 0.0,
        "unfinished": p.clients - len(completions),
        "sim_seconds": round(time.perf_counter() - started, 2),
    }


def quantile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


# --- scenario 2: one daemon, many posts ------------------------------------------------


def run_daemon(policy: str, p: Params, posts: int, workers: int) -> dict[str, Any]:
    """One process; ``posts`` posts queued at t = 0; at most ``workers`` in flight."""
    started = time.perf_counter()
    server = Server(p.outage_s, p.capacity, p.retry_after)
    world = World(server)
    rng = random.Random(p.seed)
    registry = HostRegistry(rng=rng)
    guard = registry.guard() if policy == "steadypost" else None
    retry = RetryPolicy()
    queue: list[tuple[float, int, SimPost]] = []  # the journal: (next_attempt_at, n, post)
    order = itertools.count()
    busy = {"n": 0, "wake": math.inf}
    completions: list[float] = []

    def dispatch() -> None:
        """A worker takes the most overdue due post (``journal.claim``)."""
        while busy["n"] < workers and queue and queue[0][0] <= world.now:
            _, _, post = heapq.heappop(queue)
            busy["n"] += 1
            post.start()
        if queue and busy["n"] < workers and queue[0][0] < busy["wake"]:
            busy["wake"] = queue[0][0]
            world.at(queue[0][0], wake)

    def wake() -> None:
        busy["wake"] = math.inf
        dispatch()

    def done(post: SimPost) -> None:
        busy["n"] -= 1
        completions.append(world.now)
        world.at(world.now, dispatch)

    def waiting(post: SimPost, when: float) -> None:
        busy["n"] -= 1
        heapq.heappush(queue, (when, next(order), post))
        world.at(world.now, dispatch)

    for _ in range(posts):
        post = ENGINES[p.engine](world, guard, rng, retry, latency_s=0.05, done=done,
                                 waiting=waiting)  # fmt: skip
        heapq.heappush(queue, (0.0, next(order), post))
    world.at(0.0, dispatch)

    # Watch the breaker: the requests sent in each of its open periods (a request sent
    # while it is not closed belongs to the period that ended with ``open_until``).
    per_period: dict[float, int] = {}
    seen = {"opens": 0}
    original_handle = server.handle

    def handle(t: float) -> Response:
        state = registry.state(ORIGIN)
        if t < p.outage_s and state.phase is not BreakerPhase.CLOSED:
            per_period[state.open_until] = per_period.get(state.open_until, 0) + 1
        return original_handle(t)

    def sample() -> None:
        seen["opens"] = registry.state(ORIGIN).opens

    server.handle = handle  # type: ignore[method-assign]
    world.at(p.outage_s - 1e-6, sample)
    world.run(p.outage_s + HORIZON_AFTER_RECOVERY_S)
    extra = sorted(t - p.outage_s for t in completions)
    extra += [math.inf] * (posts - len(completions))
    guarded = guard is not None
    return {
        "policy": f"daemon-{policy}",
        "posts": posts,
        "workers": workers,
        "requests_during_outage": server.during_outage,
        "breaker_periods": seen["opens"] if guarded else None,
        "max_requests_in_a_period": max(per_period.values(), default=0) if guarded else None,
        "requests_after_recovery": server.after_recovery(),
        "peak_rps_after_recovery": server.peak_rps(10),
        "p50_extra_s": quantile(extra, 0.50),
        "p99_extra_s": quantile(extra, 0.99),
        "unfinished": posts - len(completions),
        "sim_seconds": round(time.perf_counter() - started, 2),
    }


# --- report -------------------------------------------------------------------------------


def run_job(kind: str, what: Any, p: Params, daemon_posts: int) -> dict[str, Any]:
    logging.getLogger("steadypost").setLevel(logging.ERROR)  # a retry log line per request
    if kind == "fleet":
        return run_fleet(what, p)
    policy, workers = what
    return run_daemon(policy, p, daemon_posts, workers)


FLEET_POLICIES = ("fixed-1s", "fixed-5s", "tus-js-client", "steadypost-backoff-only",
                  "steadypost")  # fmt: skip


def check_targets(rows: dict[str, dict[str, Any]], daemon: dict[str, Any]) -> list[dict[str, Any]]:
    sp = rows["steadypost"]
    checks = []

    def check(name: str, value: float, limit: float, ok: bool) -> None:
        checks.append({"target": name, "value": round(value, 3), "limit": limit, "met": ok})

    during = max(sp["requests_during_outage"], 1)
    r1 = rows["fixed-1s"]["requests_during_outage"] / during
    r5 = rows["fixed-5s"]["requests_during_outage"] / during
    check("fewer requests during the outage than fixed-1s (x)", r1, 50, r1 >= 50)
    check("fewer requests during the outage than fixed-5s (x)", r5, 15, r5 >= 15)
    share = sp["peak_rps_share_of_pending"]
    check("peak rps in the first 10 s after recovery / pending", share, 0.01, share <= 0.01)
    check("p99 extra completion after recovery (s)", sp["p99_extra_s"], 300,
          sp["p99_extra_s"] <= 300)  # fmt: skip
    per = daemon["max_requests_in_a_period"] or 0
    check("daemon: most requests in one breaker period", per, 1, per <= 1)
    return checks


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.1f}"
    return "-" if value is None else str(value)


def print_table(header: Sequence[str], keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    table = [list(header)] + [[fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                                      zip(row[1:], widths[1:], strict=True)]))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--outage-min", type=float, default=30.0)
    parser.add_argument("--capacity", type=int, default=100,
                        help="requests per second the server handles after it recovers")
    parser.add_argument("--arrival-s", type=float, default=60.0,
                        help="clients start uniformly within this many seconds of the outage")
    parser.add_argument("--retry-after", type=int, default=None,
                        help="the server's 503s carry this Retry-After (default: none)")
    parser.add_argument("--daemon-posts", type=int, default=200)
    parser.add_argument("--daemon-workers", default="8,200",
                        help="posts the daemon has in flight at once; one row each (default "
                             "8,200: a worker pool, and an asyncio daemon with all of them)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="simulations run in parallel processes")
    parser.add_argument("--policies", default=",".join(FLEET_POLICIES))
    parser.add_argument("--engine", choices=sorted(ENGINES), default="fast",
                        help="flow: run every post through with_retries and the driver's pump "
                             "(slow); fast: the same calls without them (default)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)  # fmt: skip
    p = Params(args.clients, args.outage_min * 60.0, args.capacity, args.arrival_s,
               args.retry_after, args.seed, args.engine)  # fmt: skip
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    unknown = [n for n in names if n not in FLEET_POLICIES]
    if unknown:
        raise SystemExit(f"unknown policies {unknown}; known: {', '.join(FLEET_POLICIES)}")
    workers = [int(w) for w in args.daemon_workers.split(",") if w.strip()]
    jobs: list[tuple[str, Any]] = [("fleet", name) for name in names]
    jobs += [("daemon", ("steadypost", w)) for w in workers]
    jobs += [("daemon", ("backoff-only", w)) for w in workers]
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_job, kind, what, p, args.daemon_posts) for kind, what in jobs]
        results = [f.result() for f in futures]
    log(f"simulated in {time.perf_counter() - started:.1f} s")
    rows = {r["policy"]: r for (kind, _), r in zip(jobs, results, strict=True) if kind == "fleet"}
    daemons = [r for (kind, _), r in zip(jobs, results, strict=True) if kind == "daemon"]
    targets = check_targets(rows, daemons[0]) if {"steadypost", "fixed-1s", "fixed-5s"} <= set(
        rows) and workers else []  # fmt: skip
    params = {"clients": p.clients, "outage_s": p.outage_s, "capacity_rps": p.capacity,
              "arrival_s": p.arrival_s, "retry_after": p.retry_after, "seed": p.seed}  # fmt: skip
    if args.json:
        print(json.dumps({"params": params, "rows": list(rows.values()), "daemon": daemons,
                          "targets": targets}, indent=2))  # fmt: skip
    else:
        print(f"fleet: {p.clients} clients, server down {p.outage_s / 60:g} min, then "
              f"{p.capacity} requests/s (seed {p.seed})")  # fmt: skip
        print_table(
            ("policy", "requests during outage", "after recovery", "peak rps (first 10 s)",
             "p50 extra s", "p99 extra s", "unfinished", "sim s"),
            ("policy", "requests_during_outage", "requests_after_recovery",
             "peak_rps_after_recovery", "p50_extra_s", "p99_extra_s", "unfinished",
             "sim_seconds"),
            list(rows.values()),
        )  # fmt: skip
        print()
        print(f"daemon: one process, {args.daemon_posts} posts queued at the start of the outage")
        print_table(
            ("policy", "in flight", "requests during outage", "breaker periods",
             "max per period", "after recovery", "p50 extra s", "p99 extra s", "sim s"),
            ("policy", "workers", "requests_during_outage", "breaker_periods",
             "max_requests_in_a_period", "requests_after_recovery", "p50_extra_s",
             "p99_extra_s", "sim_seconds"),
            daemons,
        )  # fmt: skip
        if targets:
            print()
            for t in targets:
                mark = "met" if t["met"] else "MISSED"
                print(f"{mark:6}  {t['target']}: {t['value']:g} (target {t['limit']:g})")
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
