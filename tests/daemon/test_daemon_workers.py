"""The daemon as a worker of its journal, in this process: claims, heartbeats, status, names.

On each journal backend, with the in-process simulator and an injected clock: a daemon
registers as a named worker, its heartbeat renews the leases of what it uploads, it starts
uploads by claiming them (and checks by reserving them), asks a tus server what it supports
once per process, and ``read_status`` lists it with what it is doing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from steadypost import FileIdentity, Journal, PostState
from steadypost.daemon import Daemon, DaemonOptions, DaemonRunningError, Membership, Site
from steadypost.daemon.status import read_status
from steadypost.journal import make_owner
from steadypost.journal.owners import owner_prefix
from steadypost.testing import FakeClock, PlatformSimulator

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
T0 = 1_800_000_000.0


@pytest.fixture
def journal(journal_target: str, clock: FakeClock) -> Iterator[Journal]:
    with Journal(journal_target, clock=clock.now) as j:
        yield j


def videos(tmp_path: Path, n: int) -> list[Path]:
    files = []
    for i in range(n):
        path = tmp_path / f"clip{i}.mp4"
        path.write_bytes(hashlib.sha256(str(i).encode()).digest() * (500 + i))
        files.append(path)
    return files


def add(journal: Journal, path: Path) -> str:
    st = path.stat()
    identity = FileIdentity(st.st_size, st.st_mtime_ns, dev=st.st_dev, inode=st.st_ino,
                            ctime_ns=st.st_ctime_ns)  # fmt: skip
    return journal.add(path=path, endpoint=ENDPOINT, identity=identity).post_id


class Gate(httpx.BaseTransport):
    """The simulator, answering only once ``opened`` is set."""

    def __init__(self, sim: PlatformSimulator) -> None:
        self.inner = sim.transport()
        self.opened = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert self.opened.wait(30)
        return self.inner.handle_request(request)


def daemon(journal: Journal, clock: FakeClock, sim: PlatformSimulator,
           transport: httpx.BaseTransport | None = None, **options: object) -> Daemon:  # fmt: skip
    client = httpx.Client(transport=transport or sim.transport(), base_url=BASE)
    opts = DaemonOptions(**{"poll_s": 3600.0, "handle_signals": False, **options})  # type: ignore[arg-type]
    return Daemon(journal, Site, options=opts, clock=clock.now,
                  uploader_options={"client": client, "sleep": clock.sleep})  # fmt: skip


def test_uploads_start_by_claims_and_the_server_is_asked_once(
    journal: Journal, clock: FakeClock, tmp_path: Path
) -> None:
    sim = PlatformSimulator(clock=clock)
    ids = [add(journal, f) for f in videos(tmp_path, 5)]
    d = daemon(journal, clock, sim, concurrency=2, name="w1")
    plan = d.tick()
    assert plan.uploads == tuple(ids[:2])  # the most overdue, claimed
    for post_id in plan.uploads:
        post = journal.get(post_id)
        assert post.state is PostState.UPLOADING
        assert post.lease_owner is not None
        assert post.lease_owner.startswith(owner_prefix())
        assert post.lease_expires_ts == T0 + DaemonOptions().lease_s
    d.wait_for_jobs()
    while any(journal.get(i).state is not PostState.CONFIRMED for i in ids):
        d.tick()
        d.wait_for_jobs()
    options = [r for r in sim.requests if r.method == "OPTIONS"]
    assert len(options) <= 2  # asked by the first uploads at once, then known to them all
    assert len(sim.uploads) == len(ids)


def test_the_worker_registers_beats_and_says_what_it_uploads(
    journal: Journal, clock: FakeClock, tmp_path: Path
) -> None:
    [post_id] = [add(journal, f) for f in videos(tmp_path, 1)]
    owner = make_owner()
    claimed = journal.claim(owner=owner, lease_s=30)
    assert claimed is not None
    running = [(post_id, owner)]
    member = Membership(journal, name="web-1", process=owner_prefix(), lease_s=30,
                        heartbeat_s=10, leases=lambda: running, info=lambda: {"concurrency": 4},
                        clock=clock.now)  # fmt: skip
    member.join()
    try:
        clock.advance(25)  # a heartbeat before the lease runs out renews it
        member.beat()
        assert journal.get(post_id).lease_expires_ts == clock.now() + 30
        [view] = read_status(journal, now=clock.now()).workers
        assert (view.worker.name, view.alive, view.worker.data["concurrency"]) == ("web-1", True, 4)
        assert [p.post_id for p in view.uploading] == [post_id]
        clock.advance(31)  # silent for longer than its lease: shown as such
        [silent] = read_status(journal, now=clock.now()).workers
        assert not silent.alive
        journal.claim(owner="another", lease_s=30)  # someone took the post over meanwhile
        member.beat()
        assert member.lost == {post_id}  # and the heartbeat does not renew it back
        assert journal.get(post_id).lease_owner == "another"
    finally:
        member.leave()
    [stopped] = read_status(journal, now=clock.now()).workers
    assert stopped.worker.stopped_at == clock.now()


def test_a_live_workers_name_is_refused(journal: Journal, clock: FakeClock) -> None:
    journal.register_worker("web-1", process="elsewhere:123:0123456789abcdef", lease_s=30)
    journal.worker_heartbeat("web-1")
    member = Membership(journal, name="web-1", process=owner_prefix(), lease_s=30,
                        heartbeat_s=10, leases=list, info=dict, clock=clock.now)  # fmt: skip
    with pytest.raises(DaemonRunningError, match="a worker named 'web-1' is already running"):
        member.join()
    clock.advance(31)  # its lease has passed without a word: the name is free
    member.join()
    member.leave()


def test_a_check_is_reserved_by_the_daemon_that_runs_it(
    journal: Journal, clock: FakeClock, tmp_path: Path
) -> None:
    sim = PlatformSimulator(clock=clock)
    [post_id] = [add(journal, f) for f in videos(tmp_path, 1)]
    journal.claim(owner="u", post_id=post_id)
    journal.checkpoint(post_id, owner="u", upload_url=f"{ENDPOINT}gone")
    journal.transition(post_id, PostState.UNCONFIRMED, owner="u", next_attempt_at=T0)
    gate = Gate(sim)
    first = daemon(journal, clock, sim, gate, name="a")
    second = daemon(journal, clock, sim, name="b")
    assert first.tick().checks == (post_id,)  # its check waits for the platform...
    assert second.tick().checks == ()  # ... and the other daemon does not check it too
    assert journal.get(post_id).lease_owner is not None
    gate.opened.set()
    first.wait_for_jobs()
    after = journal.get(post_id)
    assert after.state is PostState.QUEUED  # the platform has no such upload: posted again
    assert after.lease_owner is None  # the check's outcome ended the reservation
    assert len([r for r in sim.requests if r.method == "HEAD"]) == 1
