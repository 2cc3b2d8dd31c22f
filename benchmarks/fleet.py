"""A fleet of daemons on one journal: throughput, duplicates, losses and politeness.

The work: ``--posts`` small posts (2,000 by default, 4-16 KiB each) to the platform
simulator (``steadypost.testing``) on a real socket: a tus upload, then a publish
(``PostApiPlatform``), then a status check. The platform ignores idempotency keys, so a
post published twice shows as two copies. While the fleet drains the journal:

* **ambiguous failures**: every 20th publish is processed but answered 500, every 20th
  (another) is processed and never answered, every 20th answers 500 *without*
  publishing, and every 40th final PATCH stores every byte and answers 500;
* **an outage**: from ``--outage-at`` seconds after the start, for ``--outage-for``
  seconds, every request is answered 503;
* **kill -9**: every ``--kill-every`` seconds a daemon (chosen at random) is killed with
  SIGKILL and started again at once under the same name.

The same work is drained by 1 daemon on an SQLite journal, then by 1, 2 and 4 daemon
processes on one PostgreSQL journal (``-j 4`` each). Each run gets a fresh journal,
simulator and files. A daemon process here is ``steadypost.daemon.Daemon`` (what
``steadypost daemon`` runs) with a compressed clock for the things that would otherwise
make a run last hours: unconfirmed posts are checked 1-3 s after their publish (not
15-30 min), and the hosts' time constants are 15 times shorter than the defaults (the
breaker's open periods 1-2 s growing to 8-16 s, not 15-30 s to 2-4 min; its probe
presumed lost after 4 s, not 60 s; the retry budget refilling 1.5 tokens a second, not
0.1; backoff capped at 20 s, not 5 min); leases are 10 s with a 2 s heartbeat.

Columns:

``posts/s``
    posts / the time from the first daemon's start until every post is confirmed (the
    outage is included: every row sits through the same one). ``up``: the same, with the
    outage window left out of the time, since nothing can be posted while it lasts (with
    the outage included, no fleet can finish before the outage ends, which caps the
    ratio between two rows).
``duplicates``
    copies published beyond the first, summed over posts (counted by the simulator).
``lost``
    posts not confirmed at the end, confirmed without a copy on the platform, or stored
    with other bytes than the file's.
``p99 claim``
    99th percentile of the time one ``Journal.claim`` call takes (in the daemons).
``outage reqs``
    requests that reached the platform during the outage.
``CPU/post``
    CPU time per post of the daemons, PostgreSQL and the simulator together; ``busy`` is
    how busy the machine's CPUs were during the run (other programs included). A row that
    keeps every CPU busy cannot go faster with more daemons.

PostgreSQL is started in a temporary directory (``tests/pgserver.py``: ``initdb`` +
``pg_ctl``, durable: fsync on) unless ``--postgres URL`` names a server whose user may
create databases. The journals and files live in a temporary directory on disk (not
tmpfs), the same for both engines. Exit status 1 if a row duplicated or lost a post.

    python benchmarks/fleet.py
    python benchmarks/fleet.py --posts 500 --rows sqlite,pg4 --json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))
sys.path.insert(0, str(ROOT / "tests"))

import psutil  # noqa: E402

from pgserver import PostgresServer  # noqa: E402
from steadypost import Journal, PostState  # noqa: E402
from steadypost.drivers.files import snapshot_file  # noqa: E402
from steadypost.platforms.http import HeaderPolicy  # noqa: E402
from steadypost.platforms.tus.adapters import PostApiPlatform  # noqa: E402
from steadypost.testing import (  # noqa: E402
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    Respond,
    SimulatorServer,
)

ROWS = {"sqlite": ("sqlite", 1), "pg1": ("postgresql", 1), "pg2": ("postgresql", 2),
        "pg4": ("postgresql", 4)}  # fmt: skip

# What each daemon process runs: the library's Daemon, with a compressed clock (see above).
_DAEMON = r"""
import json, logging, sys, time
from steadypost import Journal, PostOptions, RetryPolicy
from steadypost.daemon import Daemon, DaemonOptions, Site, make_handler
from steadypost.hosts import BreakerOptions, BudgetOptions, HostOptions, HostRegistry

logger = logging.getLogger("steadypost")
logger.addHandler(make_handler(sys.stderr))
logger.setLevel(logging.INFO)

args = json.loads(sys.argv[1])
claims = open(args["claims_log"], "a", buffering=1)
real_claim = Journal.claim

def timed_claim(self, **kw):
    started = time.perf_counter()
    try:
        return real_claim(self, **kw)
    finally:
        claims.write(f"{time.perf_counter() - started:.6f}\n")

Journal.claim = timed_claim
# Every time constant of the hosts' citizenship 15 times shorter than the defaults.
hosts = HostRegistry(HostOptions(
    breaker=BreakerOptions(open_base_s=2.0, open_cap_s=16.0, probe_wait_s=1.0,
                           probe_timeout_s=4.0),
    budget=BudgetOptions(refill_per_s=1.5)))
uploader = {"hosts": hosts, "retry": RetryPolicy(cap_s=20.0),
            "post_options": PostOptions(lease_s=args["lease_s"], verify_window_s=(1.0, 3.0),
                                        recheck_base_s=1.0, recheck_cap_s=4.0)}
options = DaemonOptions(concurrency=args["concurrency"], poll_s=0.2, name=args["name"],
                        lease_s=args["lease_s"], heartbeat_s=args["heartbeat_s"])
def run():
    with Journal(args["journal"]) as journal:
        Daemon(journal, lambda: Site(endpoint=args["endpoint"]), options=options,
               uploader_options=uploader).run()

if args.get("profile"):  # --profile: where a daemon's time goes (cProfile, on a clean stop)
    import cProfile
    cProfile.run("run()", args["profile"])
else:
    run()
"""


class WallClock(FakeClock):
    """The simulator on the real clock (the daemons are separate processes)."""

    def now(self) -> float:
        return time.time()


@dataclass
class Result:
    row: str
    backend: str
    daemons: int
    posts: int
    seconds: float
    posts_per_s: float
    duplicates: int
    lost: int
    p99_claim_ms: float
    outage_requests: int
    requests: int
    kills: int
    settled: bool
    cpu_ms_per_post: float
    machine_busy: float
    """Of the machine's CPU time during the run, the share that was busy (0-1)."""
    up_posts_per_s: float = 0.0
    """Posts / the run's seconds while the platform was up (the outage window left out)."""


class FaultFeeder:
    """Adds one ambiguous fault for every Nth publish / final PATCH the platform sees."""

    def __init__(self, sim: PlatformSimulator) -> None:
        self.sim = sim
        self.stop = threading.Event()
        self.injected = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        publishes = patches = seen = seen_publishes = seen_patches = 0
        kinds = [lambda: ProcessedButError(status=500, on={"publish"}),
                 lambda: ProcessedButTimeout(on={"publish"}, hold_s=1.0),
                 lambda: Respond(status=500, path="/posts", methods={"POST"}, times=1)]  # fmt: skip
        while not self.stop.wait(0.05):
            new = self.sim.requests[seen:]
            seen += len(new)
            seen_publishes += sum(1 for r in new if r.method == "POST" and r.path == "/posts")
            seen_patches += sum(1 for r in new if r.method == "PATCH")
            while seen_publishes >= publishes + 20:  # 3 kinds, each every 60: one in 20 overall
                publishes += 20
                self.sim.faults.add(kinds[(publishes // 20) % 3]())
                self.injected += 1
            while seen_patches >= patches + 40:
                patches += 40
                self.sim.faults.add(ProcessedButError(status=500, on={"final_patch"}))
                self.injected += 1


class CpuMeter:
    """CPU seconds used by the daemons (reaped children), PostgreSQL and this process."""

    def __init__(self, pg: PostgresServer | None) -> None:
        self.children = 0.0
        pid = pg.postmaster_pid() if pg is not None else None
        self._pg = psutil.Process(pid) if pid else None
        self._start = self._ours()
        self._machine = psutil.cpu_times()

    def _ours(self) -> float:
        total = sum(psutil.Process().cpu_times()[:2])
        if self._pg is not None:
            with contextlib.suppress(psutil.Error):
                for proc in [self._pg, *self._pg.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += sum(proc.cpu_times()[:2])
        return total

    def reap(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait for a daemon that was killed or told to stop; count its CPU time."""
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except ChildProcessError:
            return
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.children += usage.ru_utime + usage.ru_stime

    def used(self) -> tuple[float, float]:
        """CPU seconds used by the fleet so far, and how busy the machine was (0-1)."""
        now = psutil.cpu_times()
        busy = sum(now) - now.idle - (sum(self._machine) - self._machine.idle)
        whole = sum(now) - sum(self._machine)
        return self.children + self._ours() - self._start, busy / whole if whole else 0.0


def make_files(folder: Path, n: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    files = []
    for i in range(n):
        path = folder / f"clip{i:05d}.mp4"
        path.write_bytes(rng.randbytes(rng.randrange(4096, 16384)))
        files.append(path)
    return files


def run_row(name: str, args: argparse.Namespace, workdir: Path, pg: PostgresServer | None,
            seed: int) -> Result:  # fmt: skip
    backend, n_daemons = ROWS[name]
    rowdir = workdir / name
    files = make_files(rowdir / "videos", args.posts, seed)
    target = str(rowdir / "journal.sqlite3") if backend == "sqlite" else pg.new_database()  # type: ignore[union-attr]
    sim = PlatformSimulator(clock=WallClock(), ignore_idempotency=True)
    with SimulatorServer(sim) as server:
        platform = PostApiPlatform(HeaderPolicy(), publish_url=f"{server.url}/posts",
                                   status_url=f"{server.url}/posts/{{post_id}}/status")  # fmt: skip
        extra = {"platform": dict(platform.config())}
        with Journal(target) as journal:
            for f in files:
                journal.add(path=f, endpoint=f"{server.url}/files/", platform="post-api",
                            identity=snapshot_file(f).identity, extra=extra)  # fmt: skip
        env = dict(os.environ, PYTHONPATH=str(ROOT / "sdk"), STEADYPOST_HOME=str(rowdir / "home"))
        claims_log = rowdir / "claims.txt"

        def start(i: int) -> subprocess.Popen[bytes]:
            spec = {"journal": target, "name": f"{name}-{i}", "concurrency": args.jobs,
                    "endpoint": f"{server.url}/files/", "claims_log": str(claims_log),
                    "lease_s": 10.0, "heartbeat_s": 2.0,
                    "profile": str(rowdir / f"daemon-{i}.prof") if args.profile else None,
                    }  # fmt: skip
            log = open(rowdir / f"daemon-{i}.log", "ab")  # noqa: SIM115 - the child owns it
            return subprocess.Popen([sys.executable, "-c", _DAEMON, json.dumps(spec)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip

        meter = CpuMeter(pg if backend == "postgresql" else None)
        t0 = time.time()
        outage = Outage(t0 + args.outage_at, t0 + args.outage_at + args.outage_for, mode="503")
        sim.faults.add(outage)
        feeder = FaultFeeder(sim)
        procs = [start(i) for i in range(n_daemons)]
        kills, next_kill, rng = 0, time.monotonic() + args.kill_every, random.Random(seed)
        deadline, settled, elapsed = time.monotonic() + args.timeout, False, 0.0
        try:
            with Journal(target) as journal:
                while time.monotonic() < deadline:
                    counts = journal.counts()
                    if counts[PostState.CONFIRMED] + counts[PostState.FAILED] == args.posts:
                        elapsed, settled = time.time() - t0, True
                        break
                    if time.monotonic() >= next_kill:
                        victim = rng.randrange(len(procs))
                        procs[victim].kill()
                        meter.reap(procs[victim])
                        procs[victim] = start(victim)
                        kills += 1
                        next_kill += args.kill_every
                    time.sleep(0.1)
                final = {p.post_id: p for p in journal.list()}
                copies: dict[str, int] = {}
                for info in sim.published:
                    key = info.idempotency_key or ""
                    copies[key] = copies.get(key, 0) + 1
                twice = {k: [(e.at, e.kind, dict(e.data)) for e in journal.events(k)]
                         for k, n in copies.items() if n > 1 and k in final}  # fmt: skip
                if twice:  # the evidence, for whoever looks into it
                    (rowdir / "duplicates.json").write_text(json.dumps(twice, indent=1))
        finally:
            feeder.stop.set()
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=20)  # (then reaped below: its CPU time counted)
                except subprocess.TimeoutExpired:
                    proc.kill()
                meter.reap(proc)
            cpu, busy = meter.used()
        elapsed = elapsed or time.time() - t0
        requests = sim.requests
        if args.keep:  # what reached the platform during the outage, for whoever looks
            during = [(round(r.at - outage.start, 3), r.method, r.path, r.status)
                      for r in requests if outage.start <= r.at < outage.end]  # fmt: skip
            (rowdir / "outage-requests.json").write_text(json.dumps(during, indent=0))
    by_key: dict[str, int] = {}
    for info in sim.published:
        by_key[info.idempotency_key or ""] = by_key.get(info.idempotency_key or "", 0) + 1
    digests = {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    lost = 0
    for post in final.values():
        copies = by_key.get(post.post_id, 0)
        ok = post.state is PostState.CONFIRMED and copies >= 1 and any(
            p.sha256 == digests[post.path] for p in sim.published if p.idempotency_key
            == post.post_id)  # fmt: skip
        lost += not ok
    lost += args.posts - len(final)
    claim_times = sorted(float(x) for x in claims_log.read_text().split()) or [0.0]
    p99 = claim_times[min(len(claim_times) - 1, int(0.99 * len(claim_times)))]
    if pg is not None and backend == "postgresql" and not args.keep:
        pg.drop_database(target)
    return Result(
        row=name, backend=backend, daemons=n_daemons, posts=args.posts,
        seconds=round(elapsed, 2), posts_per_s=round(args.posts / elapsed, 1),
        duplicates=sum(max(0, n - 1) for n in by_key.values()), lost=lost,
        p99_claim_ms=round(p99 * 1000, 2),
        outage_requests=sum(outage.start <= r.at < outage.end for r in requests),
        requests=len(requests), kills=kills, settled=settled,
        cpu_ms_per_post=round(cpu * 1000 / args.posts, 1), machine_busy=round(busy, 2),
        up_posts_per_s=round(args.posts / max(elapsed - _down_s(args, elapsed), 1e-9), 1),
    )  # fmt: skip


def _down_s(args: argparse.Namespace, elapsed: float) -> float:
    """How much of a run of ``elapsed`` seconds the outage took (nothing can be posted then)."""
    return max(0.0, min(elapsed, args.outage_at + args.outage_for) - args.outage_at)


def print_table(results: Sequence[Result], meta: dict[str, Any]) -> None:
    print(f"\nfleet benchmark: {meta['posts']} posts, -j {meta['jobs']} per daemon, outage "
          f"{meta['outage_at']:g}-{meta['outage_at'] + meta['outage_for']:g} s, kill -9 every "
          f"{meta['kill_every']:g} s; {meta['cpus']} CPU(s)")
    header = (f"{'journal':<12}{'daemons':>8}{'posts/s':>9}{'up':>7}{'seconds':>9}"
              f"{'duplicates':>11}{'lost':>6}{'p99 claim':>11}{'outage reqs':>13}"
              f"{'requests':>10}{'kills':>7}{'CPU/post':>10}{'busy':>6}")
    print(header)
    print("-" * len(header))
    for r in results:
        journal = "SQLite" if r.backend == "sqlite" else "PostgreSQL"
        print(f"{journal:<12}{r.daemons:>8}{r.posts_per_s:>9.1f}{r.up_posts_per_s:>7.1f}"
              f"{r.seconds:>9.1f}"
              f"{r.duplicates:>11}{r.lost:>6}{r.p99_claim_ms:>9.1f}ms{r.outage_requests:>13}"
              f"{r.requests:>10}{r.kills:>7}{r.cpu_ms_per_post:>8.1f}ms{r.machine_busy:>6.0%}"
              + ("" if r.settled else "  (timed out)"))
    by_row = {r.row: r for r in results}
    if "pg1" in by_row and "pg4" in by_row:
        one, four = by_row["pg1"], by_row["pg4"]
        print(f"\n4 PostgreSQL daemons vs 1: {four.posts_per_s / one.posts_per_s:.2f}x the "
              f"posts/s (target >= 2.5x; {four.up_posts_per_s / one.up_posts_per_s:.2f}x while "
              f"the platform is up), {four.outage_requests / max(one.outage_requests, 1):.2f}x"
              " the requests during the outage (target <= 1.2x)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--jobs", "-j", type=int, default=4, help="uploads at once per daemon")
    parser.add_argument("--rows", default="sqlite,pg1,pg2,pg4",
                        help=f"which runs, of {','.join(ROWS)}")  # fmt: skip
    parser.add_argument("--outage-at", type=float, default=5.0)
    parser.add_argument("--outage-for", type=float, default=60.0,
                        help="seconds (60: 15 minutes at the hosts' 15-fold time)")
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--postgres", default=None, help="an existing server's URL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the journals and logs")
    parser.add_argument("--profile", action="store_true",
                        help="profile each daemon (daemon-N.prof in the kept directory)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--json-out", type=Path, default=None, metavar="FILE",
                        help="also write the results as JSON to FILE")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; known: {list(ROWS)}")
    workdir = Path(tempfile.mkdtemp(prefix="steadypost-fleet-", dir="/var/tmp"))
    pg: PostgresServer | None = None
    if any(ROWS[r][0] == "postgresql" for r in rows):
        if args.postgres:
            os.environ["STEADYPOST_TEST_POSTGRES"] = args.postgres
        pg = PostgresServer(durable=True).start()
    results = []
    try:
        for name in rows:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results.append(run_row(name, args, workdir, pg, args.seed))
    finally:
        if pg is not None:
            pg.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}", file=sys.stderr)
    meta = {"posts": args.posts, "jobs": args.jobs, "outage_at": args.outage_at,
            "outage_for": args.outage_for, "kill_every": args.kill_every,
            "cpus": os.cpu_count(), "seed": args.seed}  # fmt: skip
    document = json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2)
    if args.json_out is not None:
        args.json_out.write_text(document + "\n")
    if args.json:
        print(document)
    else:
        print_table(results, meta)
    return 1 if any(r.duplicates or r.lost or not r.settled for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
