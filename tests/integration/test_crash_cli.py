"""Crashes and repeats on the real clock, through ``steadypost`` processes and the real tus server.

* ``kill -9`` of ``steadypost upload`` once bytes flow, then ``steadypost resume`` at once:
  one confirmed post, one correct copy, exit 0, in far less than the 300 s lease;
* ``steadypost daemon`` killed with ``-9`` mid-upload, its pid taken by another process (as
  after a reboot), then started again: it goes on at once, not after the lease;
* ``steadypost upload FILE`` twice at once: one post, one copy, both name the same post;
* ``resume`` while another live (or stopped) process uploads: exit 4, naming that process,
  and its lease is left alone;
* ``steadypost cancel`` while the daemon uploads the post: cancelled, quietly, once.

Uploads that must be caught halfway go through ``SlowProxy`` (see test_daemon_process.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_daemon_process import (
    DaemonProcess,
    SlowProxy,
    add,
    assert_stored_once,
    make_file,
    posts,
    steadypost,
    wait_until,
)
from test_daemon_process import daemons as daemons  # the fixture, shared

from steadypost import Journal, Post, PostState
from tusd import TusServer

KiB = 1024
MiB = 1024 * KiB
LEASE_S = 300.0
"""The default lease: every test here must finish in far less."""


@pytest.fixture
def server(tus_server: TusServer) -> Iterator[TusServer]:
    """``tus_server``, SIGKILLed afterwards (a killed client's PATCH never settles there)."""
    yield tus_server
    tus_server.kill()


@pytest.fixture
def slow(server: TusServer) -> Iterator[SlowProxy]:
    """A proxy to ``server`` passing the client's bytes on at 1 MiB/s (``rate = None``: at once)."""
    proxy = SlowProxy(int(server.base_url.rsplit(":", 1)[1]), rate=1 * MiB)
    yield proxy
    proxy.close()


def one_post() -> Post:
    [post] = posts()
    return post


def upload(video: Path, endpoint: str, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        steadypost("upload", video, "-e", endpoint, "--chunk-size", "128KiB", "--json", *more),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def uploading_from(offset: int) -> Callable[[], bool]:
    def check() -> bool:
        found = posts()
        return bool(found) and found[0].state is PostState.UPLOADING and found[0].offset >= offset

    return check


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(steadypost(*args), capture_output=True, text=True, timeout=timeout)


def test_kill_9_of_upload_then_resume_at_once_finishes_it(
    server: TusServer, slow: SlowProxy, tmp_path: Path
) -> None:
    video = make_file(tmp_path / "clip.mp4", 3 * MiB)
    proc = upload(video, slow.endpoint())
    wait_until(uploading_from(384 * KiB), what="bytes flowing")
    proc.kill()
    proc.communicate(timeout=30)
    cut = one_post()
    assert cut.state is PostState.UPLOADING
    assert cut.lease_expires_at is not None
    assert cut.lease_expires_ts > time.time() + LEASE_S / 2  # a live lease, long to wait out

    slow.rate = None
    started = time.monotonic()
    resumed = run("resume", "--json")
    elapsed = time.monotonic() - started
    assert resumed.returncode == 0, resumed.stderr
    assert elapsed < 30, elapsed
    [record] = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert (record["post_id"], record["state"]) == (cut.post_id, "confirmed")
    done = one_post()
    assert done.state is PostState.CONFIRMED
    assert done.upload_url == cut.upload_url  # resumed into the same upload
    assert len(server.uploads()) == 1
    assert_stored_once(server, [video])
    with Journal() as journal:
        reasons = [e.data.get("reason") for e in journal.events(done.post_id) if e.kind == "state"]
    assert "its owner's process is gone" in reasons


def _take_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """A new process with exactly ``pid`` (a reused pid, as after a reboot), if we may."""
    for _ in range(20):
        try:
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        except OSError:
            return None
        proc = subprocess.Popen(["sleep", "120"])
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


def test_a_daemon_killed_mid_upload_goes_on_at_once_even_if_its_pid_was_reused(
    server: TusServer, slow: SlowProxy, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    video = make_file(tmp_path / "clip.mp4", 3 * MiB)
    [post_id] = add(video, "--endpoint", slow.endpoint())
    first = daemons("--chunk-size", "128KiB")
    wait_until(uploading_from(384 * KiB), what="an upload halfway")
    first.proc.kill()
    first.wait()
    impostor = _take_pid(first.pid)
    if impostor is None:
        pytest.skip("cannot choose the next pid here (needs root: /proc/sys/kernel/ns_last_pid)")
    try:
        os.kill(first.pid, 0)  # the dead daemon's pid is a live process now
        slow.rate = None
        started = time.monotonic()
        second = daemons("--chunk-size", "128KiB")
        wait_until(lambda: one_post().state is PostState.CONFIRMED, timeout=30,
                   what="the post confirmed by the restarted daemon")  # fmt: skip
        assert time.monotonic() - started < 30
        second.signal(signal.SIGTERM)
        assert second.wait() == 0
    finally:
        impostor.kill()
        impostor.wait()
    assert one_post().post_id == post_id
    assert len(server.uploads()) == 1
    assert_stored_once(server, [video])
    assert f"its uploader (steadypost process {first.pid} on host" in second.log
    assert "ended without a word; going on from byte" in second.log


def test_the_same_upload_twice_at_once_is_one_post(
    server: TusServer, slow: SlowProxy, tmp_path: Path
) -> None:
    video = make_file(tmp_path / "clip.mp4", 2 * MiB)
    procs = [upload(video, slow.endpoint()) for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes in ([0, 0], [0, 4]), outputs
    ids = [json.loads(out)["post_id"] for out, _ in outputs]
    assert ids[0] == ids[1], outputs
    done = one_post()
    assert (done.post_id, done.state) == (ids[0], PostState.CONFIRMED)
    assert len(server.uploads()) == 1
    assert_stored_once(server, [video])
    # The one that did not upload said why: joined (or, had it started after the other was
    # done, already posted), and (if still busy) who uploads it.
    said = " ".join(err for _, err in outputs)
    assert (f"joining post {done.post_id}" in said
            or f"already posted: {done.post_id} confirmed" in said), said  # fmt: skip
    if codes == [0, 4]:
        assert "is being uploaded by steadypost process" in said

    # And once more, after it is up: already posted, nothing sent, exit 0.
    slow.rate = None
    again = run("upload", video, "-e", slow.endpoint())
    assert again.returncode == 0, again.stderr
    assert f"already posted: {done.post_id} confirmed" in again.stderr
    assert len(server.uploads()) == 1
    new = run("upload", video, "-e", slow.endpoint(), "--new", "--json")
    assert new.returncode == 0, new.stderr
    assert json.loads(new.stdout)["post_id"] != done.post_id
    assert len(server.completed()) == 2  # --new: a second post, on purpose


def test_resume_never_exits_0_while_another_live_process_uploads(
    server: TusServer, slow: SlowProxy, tmp_path: Path
) -> None:
    video = make_file(tmp_path / "clip.mp4", 3 * MiB)
    proc = upload(video, slow.endpoint())
    try:
        wait_until(uploading_from(256 * KiB), what="bytes flowing")
        busy = run("resume")
        assert busy.returncode == 4, busy.stderr
        assert f"is being uploaded by steadypost process {proc.pid} on host" in busy.stderr
        named = run("resume", one_post().post_id)
        assert named.returncode == 4, named.stderr
        assert f"steadypost process {proc.pid}" in named.stderr
        repeat = run("upload", video, "-e", slow.endpoint())
        assert repeat.returncode == 4, repeat.stderr
        assert f"is being uploaded by steadypost process {proc.pid}" in repeat.stderr

        proc.send_signal(signal.SIGSTOP)  # stopped is alive: its lease is not taken early
        stopped = run("resume")
        assert stopped.returncode == 4, stopped.stderr
        held = one_post()
        assert held.state is PostState.UPLOADING
        assert f":{proc.pid}:" in (held.lease_owner or "")
        proc.send_signal(signal.SIGCONT)
        slow.rate = None
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.communicate(timeout=30)
    assert run("resume").returncode == 0
    assert len(server.uploads()) == 1
    assert_stored_once(server, [video])


def test_cancel_while_the_daemon_uploads_wins_quietly(
    server: TusServer, slow: SlowProxy, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    video = make_file(tmp_path / "clip.mp4", 4 * MiB)
    [post_id] = add(video, "--endpoint", slow.endpoint())
    d = daemons("--chunk-size", "128KiB")
    wait_until(uploading_from(256 * KiB), what="the daemon uploading")
    cancelled = run("cancel", post_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith("cancelled")
    d.wait_log(f"(post {post_id}) was cancelled")
    time.sleep(1.5)  # several poll intervals (0.2 s): time to (wrongly) start it again
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert one_post().state is PostState.CANCELLED
    assert "unexpected" not in d.log
    assert "IllegalTransition" not in d.log
    assert d.log.count(f"uploading clip.mp4 (post {post_id}") == 1, d.log
    with Journal() as journal:
        events = journal.events(post_id)
    at = next(i for i, e in enumerate(events) if e.data.get("to") == "cancelled")
    assert not [e for e in events[at:] if e.kind == "state"][1:], events[at:]  # nothing after
