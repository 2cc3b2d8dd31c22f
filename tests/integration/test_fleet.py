"""A fleet of ``steadypost daemon`` processes on one PostgreSQL journal.

Real daemon processes (``steadypost daemon --journal postgresql://...``) drain one journal
on a real PostgreSQL, uploading to the simulator on a real socket:

* several daemons share the work, and every post is claimed by one and uploaded once;
* ``steadypost status`` lists the workers, their host, heartbeat and uploads;
* a daemon killed with ``kill -9`` mid-upload: another takes its posts over at once (same
  host) and finishes them from their checkpoints, each file stored once, byte for byte;
* a daemon frozen (SIGSTOP) mid-upload loses its posts when its lease runs out; resumed, it
  writes nothing for them and goes on as a healthy worker;
* two live workers may not share a name; a killed one's name is free again at once.
"""

from __future__ import annotations

import configparser
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_daemon_process import (
    DaemonProcess,
    KiB,
    MiB,
    SlowProxy,
    make_file,
    sha256_of,
    steadypost,
    wait_until,
)

from steadypost import Journal, PostState
from steadypost.drivers.files import snapshot_file
from steadypost.testing import PlatformSimulator, SimulatorServer

FAST = ("--lease", "3s", "--heartbeat", "0.5s", "--poll-interval", "0.1")


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(PlatformSimulator()) as server:
        yield server


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(name: str, *args: str) -> DaemonProcess:
        d = DaemonProcess(tmp_path, "--journal", pg_url, "--name", name, *args, name=name)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGCONT)
        d.kill()


def add_posts(pg_url: str, files: list[Path], endpoint: str) -> list[str]:
    with Journal(pg_url) as journal:
        return [journal.add(path=f, endpoint=endpoint, identity=snapshot_file(f).identity).post_id
                for f in files]  # fmt: skip


def states(pg_url: str) -> dict[str, PostState]:
    with Journal(pg_url) as journal:
        return {p.post_id: p.state for p in journal.list()}


def all_confirmed(pg_url: str, n: int) -> Callable[[], bool]:
    return lambda: list(states(pg_url).values()) == [PostState.CONFIRMED] * n


def status(pg_url: str) -> dict[str, object]:
    proc = subprocess.run(steadypost("--journal", pg_url, "status", "--json"),
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def claims(journal: Journal, post_id: str) -> list[dict[str, object]]:
    """The state events that gave the post to a worker."""
    return [dict(e.data) for e in journal.events(post_id)
            if e.kind == "state" and e.data.get("to") == "uploading"]  # fmt: skip


def stored(sim: SimulatorServer) -> list[str]:
    return sorted(u.sha256 for u in sim.sim.uploads.values() if u.completed)


def test_daemons_share_one_journal_and_upload_each_post_once(
    pg_url: str, sim: SimulatorServer, tmp_path: Path, fleet: Callable[..., DaemonProcess]
) -> None:
    files = [make_file(tmp_path / f"clip{i}.mp4", 40 * KiB + 997 * i) for i in range(30)]
    daemons = [fleet(f"w{i}", "-j", "2", *FAST) for i in range(3)]
    for d in daemons:
        d.wait_log("daemon started")
    seen = status(pg_url)
    assert seen["shared"] is True
    assert sorted(w["name"] for w in seen["workers"]) == ["w0", "w1", "w2"]  # type: ignore[attr-defined, index]
    assert {w["state"] for w in seen["workers"]} == {"alive"}  # type: ignore[attr-defined, index]
    ids = add_posts(pg_url, files, f"{sim.url}/files/")
    wait_until(all_confirmed(pg_url, len(ids)), 90, "every post confirmed")
    assert stored(sim) == sorted(sha256_of(f) for f in files)  # each file once, exactly
    owners = set()
    with Journal(pg_url) as journal:
        for post_id in ids:
            [claim] = claims(journal, post_id)  # claimed once, by one worker, never taken over
            owners.add(str(claim["owner"]).rsplit(".", 1)[0])
    assert len(owners) >= 2, "the work was not shared"
    for d in daemons:
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
    assert {w["state"] for w in status(pg_url)["workers"]} == {"stopped"}  # type: ignore[attr-defined, index]


def test_a_killed_daemons_uploads_are_taken_over_at_once(
    pg_url: str, sim: SimulatorServer, tmp_path: Path, fleet: Callable[..., DaemonProcess]
) -> None:
    proxy = SlowProxy(sim.port, rate=2 * MiB)  # about half a second a file
    files = [make_file(tmp_path / f"long{i}.mp4", MiB + i) for i in range(6)]
    # A 60 s lease: anything finished within it was taken over because the owner is gone.
    slow = ("--lease", "60s", "--heartbeat", "1s", "--poll-interval", "0.1", "-j", "2")
    first = fleet("first", *slow)
    first.wait_log("daemon started")
    ids = add_posts(pg_url, files, proxy.endpoint())

    def first_is_uploading() -> bool:
        with Journal(pg_url) as journal:
            return any(p.state is PostState.UPLOADING and p.offset > 0 for p in journal.list())

    wait_until(first_is_uploading, 30, "the first daemon mid-upload")
    first.kill()  # kill -9
    killed_at = time.monotonic()
    second = fleet("second", *slow)
    wait_until(all_confirmed(pg_url, len(ids)), 60, "every post confirmed")
    assert time.monotonic() - killed_at < 45  # not after the 60 s lease
    assert stored(sim) == sorted(sha256_of(f) for f in files)
    with Journal(pg_url) as journal:
        taken = [c for post_id in ids for c in claims(journal, post_id) if "previous_owner" in c]
    assert taken, "nothing was taken over"
    assert {c["reason"] for c in taken} == {"its owner's process is gone"}
    second.signal(signal.SIGTERM)
    assert second.wait() == 0
    proxy.close()


def test_a_frozen_daemon_loses_its_posts_and_writes_nothing_for_them(
    pg_url: str, sim: SimulatorServer, tmp_path: Path, fleet: Callable[..., DaemonProcess]
) -> None:
    proxy = SlowProxy(sim.port, rate=1 * MiB)
    files = [make_file(tmp_path / f"frozen{i}.mp4", MiB + i) for i in range(2)]
    frozen = fleet("frozen", "-j", "2", *FAST)
    frozen.wait_log("daemon started")
    ids = add_posts(pg_url, files, proxy.endpoint())

    def mid_upload() -> bool:
        with Journal(pg_url) as journal:
            return all(journal.get(i).state is PostState.UPLOADING
                       and journal.get(i).offset > 0 for i in ids)  # fmt: skip

    wait_until(mid_upload, 30, "both posts mid-upload")
    frozen.signal(signal.SIGSTOP)
    other = fleet("other", "-j", "2", *FAST)  # takes them once the 3 s leases run out
    wait_until(all_confirmed(pg_url, len(ids)), 60, "the other daemon finished them")
    silent = {w["name"]: w["state"] for w in status(pg_url)["workers"]}  # type: ignore[attr-defined, index]
    assert silent == {"frozen": "silent", "other": "alive"}
    with Journal(pg_url) as journal:
        events_before = {i: journal.events(i) for i in ids}
    frozen.signal(signal.SIGCONT)
    frozen.wait_log("this run's result is not recorded", timeout=30)
    wait_until(lambda: {w["state"] for w in status(pg_url)["workers"]} == {"alive"}, 10,  # type: ignore[attr-defined, index]
               "the resumed daemon beating again")  # fmt: skip
    with Journal(pg_url) as journal:
        assert {i: journal.events(i) for i in ids} == events_before  # not one more row
        for i in ids:
            assert journal.get(i).lease_owner is None
    assert stored(sim) == sorted(sha256_of(f) for f in files)
    for d in (frozen, other):
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
    proxy.close()


def test_live_workers_cannot_share_a_name_and_a_killed_ones_name_is_free(
    pg_url: str, fleet: Callable[..., DaemonProcess]
) -> None:
    first = fleet("web-1", *FAST)
    first.wait_log("daemon started")
    twin = fleet("web-1", *FAST)
    assert twin.wait(timeout=30) == 1
    assert "a worker named 'web-1' is already running" in twin.log
    assert f"pid {first.pid}" in twin.log
    first.kill()
    again = fleet("web-1", *FAST)
    again.wait_log("daemon started")
    assert [w["pid"] for w in status(pg_url)["workers"]] == [again.pid]  # type: ignore[attr-defined, index]
    again.signal(signal.SIGTERM)
    assert again.wait() == 0


def test_the_systemd_template_runs_named_workers_on_the_fleet_journal(pg_url: str) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(Path(__file__).resolve().parents[2] / "examples" / "steadypost-worker@.service")
    service = unit["Service"]
    assert "-HUP" in service["ExecReload"]
    assert service["EnvironmentFile"] == "/etc/steadypost/fleet.env"
    host = socket.gethostname()
    argv = service["ExecStart"].replace("%H", host).replace("%i", "3").split()
    assert argv[0].endswith("/steadypost")
    env = dict(os.environ, STEADYPOST_JOURNAL=pg_url)  # as fleet.env sets it
    run = subprocess.run(steadypost(*argv[1:], "--once"), env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    [worker] = status(pg_url)["workers"]  # type: ignore[misc]
    assert (worker["name"], worker["host"], worker["concurrency"]) == (f"{host}-3", host, 4)  # type: ignore[index]
