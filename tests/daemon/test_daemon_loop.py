"""The daemon in this process, on an injected clock: verifications on time, watch memory, stop.

The platform is the in-process simulator (``sim.transport()``), so nothing waits
for real except where a test says so.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from steadypost import FileIdentity, Journal, Post, PostState, RetryPolicy, Uploader
from steadypost.daemon import Daemon, DaemonOptions, FolderWatcher, Site
from steadypost.daemon.watch import Sidecar
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.tus.adapters import PostApiPlatform
from steadypost.testing import (
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButError,
    Respond,
)

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
T0 = 1_800_000_000.0




@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(hashlib.sha256(b"v").digest() * 3000)
    return path


def post_api() -> PostApiPlatform:
    return PostApiPlatform(
        HeaderPolicy(), publish_url=f"{BASE}/posts", status_url=f"{BASE}/posts/{{post_id}}/status"
    )


def unconfirmed_post(sim: PlatformSimulator, journal: Journal, clock: FakeClock, video: Path,
                     client: httpx.Client) -> Post:  # fmt: skip
    """A post whose publish was processed but answered 500: unconfirmed, checked later."""
    with Uploader(client=client, journal=journal, sleep=clock.sleep, clock=clock.now,
                  rng=random.Random(1), retry=RetryPolicy(max_attempts=3)) as up:  # fmt: skip
        post = up.post(video, ENDPOINT, platform=post_api())
    assert post.state is PostState.UNCONFIRMED
    assert post.next_attempt_at is not None
    return post


def make_daemon(journal: Journal, clock: FakeClock, client: httpx.Client,
                **options: object) -> Daemon:  # fmt: skip
    opts = DaemonOptions(**{"poll_s": 3600.0, "handle_signals": False, **options})  # type: ignore[arg-type]
    return Daemon(journal, Site, options=opts, clock=clock.now,
                  uploader_options={"client": client, "sleep": clock.sleep})  # fmt: skip


def verify_times(journal: Journal, post_id: str) -> list[float]:
    return [e.at_ts for e in journal.events(post_id) if e.kind == "verify"]


def test_a_due_verification_runs_on_time_under_an_injected_clock(
    journal: Journal, clock: FakeClock, video: Path
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButError(status=500, on={"publish"})])
    client = httpx.Client(transport=sim.transport(), base_url=BASE)
    post = unconfirmed_post(sim, journal, clock, video, client)
    due = post.next_attempt_ts
    assert due is not None
    assert due - clock.now() >= 15 * 60
    daemon = make_daemon(journal, clock, client)

    plan = daemon.tick()
    assert plan.checks == ()
    assert plan.wake_at == due  # it sleeps exactly until the check is due
    clock.advance_to(due - 0.5)
    assert daemon.tick().checks == ()  # not a moment early
    clock.advance_to(plan.wake_at)
    assert daemon.tick().checks == (post.post_id,)
    daemon.wait_for_jobs()

    checked = journal.get(post.post_id)
    assert checked.state is PostState.CONFIRMED
    assert verify_times(journal, post.post_id) == [due]  # on time, once
    assert sim.published_copies(post.post_id) == 1
    assert daemon.results[post.post_id].state is PostState.CONFIRMED


def test_once_checks_what_is_due_and_reposts_what_the_platform_lost(
    journal: Journal, clock: FakeClock, video: Path
) -> None:
    # A 500 that did NOT publish: only the check can tell, and only then is it re-posted.
    sim = PlatformSimulator(clock=clock, faults=[Respond(status=500, path="/posts", times=1)])
    client = httpx.Client(transport=sim.transport(), base_url=BASE)
    post = unconfirmed_post(sim, journal, clock, video, client)
    assert post.next_attempt_at is not None
    daemon = make_daemon(journal, clock, client, once=True)
    assert daemon.run() == []  # nothing due yet
    clock.advance_to(post.next_attempt_at)
    [after] = make_daemon(journal, clock, client, once=True).run()
    assert after.state is PostState.UNCONFIRMED  # published again, now processing
    assert sim.published_copies(post.post_id) == 1
    states = [e.data["to"] for e in journal.events(post.post_id) if e.kind == "state"]
    assert states[-3:] == ["queued", "uploading", "unconfirmed"]  # all in that one run


def test_the_running_loop_wakes_for_a_verification_and_not_before(
    journal: Journal, clock: FakeClock, video: Path
) -> None:
    sim = PlatformSimulator(clock=clock, faults=[ProcessedButError(status=500, on={"publish"})])
    client = httpx.Client(transport=sim.transport(), base_url=BASE)
    post = unconfirmed_post(sim, journal, clock, video, client)
    assert post.next_attempt_at is not None
    daemon = make_daemon(journal, clock, client, poll_s=0.02)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        for moment in (T0 + 60, T0 + 600, post.next_attempt_ts - 0.5):
            clock.advance_to(moment)
            time.sleep(0.1)  # several loop rounds
            assert journal.get(post.post_id).state is PostState.UNCONFIRMED
        clock.advance_to(post.next_attempt_ts)  # to the exact float moment it was journaled at
        wait_until(lambda: journal.get(post.post_id).state is PostState.CONFIRMED)
    finally:
        daemon.stop()
        runner.join(timeout=10)
    assert not runner.is_alive()
    assert verify_times(journal, post.post_id) == [post.next_attempt_ts]


def test_stop_cuts_a_backoff_wait_short_and_leaves_the_post_resumable(
    journal: Journal, video: Path
) -> None:
    # The platform is down and asks for 30 s; the daemon's upload waits for real.
    sim_clock = FakeClock()
    sim = PlatformSimulator(clock=sim_clock, faults=[Outage(sim_clock.now(), sim_clock.now() + 1e6,
                                                            retry_after=30)])  # fmt: skip
    client = httpx.Client(transport=sim.transport(), base_url=BASE)
    journal_rt = Journal(journal.path)  # the real clock, as a daemon runs
    post = journal_rt.add(path=video, endpoint=ENDPOINT, identity=_identity(video))
    daemon = Daemon(journal_rt, Site, options=DaemonOptions(poll_s=0.05, handle_signals=False),
                    uploader_options={"client": client})  # fmt: skip
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: any(e.kind == "wait" for e in journal_rt.events(post.post_id)))
        started = time.monotonic()
        daemon.stop()
        runner.join(timeout=10)
        assert time.monotonic() - started < 2
    finally:
        daemon.stop()
        runner.join(timeout=10)
        journal_rt.close()
    saved = journal.get(post.post_id)
    assert saved.state is PostState.WAITING
    assert saved.lease_owner is None
    assert saved.next_attempt_at is not None
    assert saved.next_attempt_ts <= time.time()


# --- watch folders ---------------------------------------------------------------------------


def _identity(path: Path) -> FileIdentity:
    st = path.stat()
    return FileIdentity(st.st_size, st.st_mtime_ns)


def test_each_watched_file_is_posted_once_also_after_a_restart(
    tmp_path: Path, journal: Journal, clock: FakeClock
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    uploader = Uploader(journal=journal, clock=clock.now)

    def add(path: Path, sidecar: Sidecar) -> list[Post]:
        return [uploader.add(path, ENDPOINT, metadata=sidecar.metadata)]

    clip = folder / "clip.mp4"
    clip.write_bytes(b"a" * 5000)
    (folder / "clip.mp4.json").write_text('{"caption": "Day one"}')
    (folder / ".hidden.mp4").write_bytes(b"h" * 10)
    (folder / "next.mp4.part").write_bytes(b"p" * 10)
    watcher = FolderWatcher([folder], journal, settle_s=2)
    assert watcher.scan(T0) == []
    [ready] = watcher.scan(T0 + 2)
    assert ready.path == clip
    [post] = watcher.post(ready, add) or ()
    assert post.metadata["caption"] == "Day one"
    assert watcher.scan(T0 + 4) == []

    restarted = FolderWatcher([folder], journal, settle_s=2)
    assert restarted.scan(T0 + 10) == []
    assert restarted.scan(T0 + 12) == []  # remembered in the journal: not posted twice
    assert len(journal.list()) == 1

    # The same name exported again (new bytes, new time) is a new video.
    clip.write_bytes(b"b" * 6000)
    os.utime(clip, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    restarted.scan(T0 + 20)
    [again] = restarted.scan(T0 + 22)
    [second] = restarted.post(again, add) or ()
    assert second.post_id != post.post_id
    assert len(journal.list()) == 2
    uploader.close()


def test_a_crash_while_adding_a_watched_file_keeps_nothing(
    tmp_path: Path, journal: Journal, clock: FakeClock
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"a" * 5000)
    uploader = Uploader(journal=journal, clock=clock.now)

    def add_then_fail(path: Path, sidecar: Sidecar) -> list[Post]:
        uploader.add(path, ENDPOINT)
        raise RuntimeError("power cut")

    watcher = FolderWatcher([folder], journal, settle_s=0)
    watcher.scan(T0)
    [ready] = watcher.scan(T0)
    with pytest.raises(RuntimeError):
        watcher.post(ready, add_then_fail)
    assert journal.list() == []  # the post and the memory of the file go together
    [still] = watcher.scan(T0 + 1)
    assert watcher.post(still, lambda p, m: [uploader.add(p, ENDPOINT)]) is not None
    uploader.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)
