"""A worker frozen past its lease, then resumed, writes nothing and sends nothing more.

Real processes on the real clock, on each journal backend. A child uploads a post (a
1-second lease) to the simulator on a real socket, through a proxy that counts every byte
it sends, and freezes itself (SIGSTOP) in the middle of the request body. Its lease runs
out; another worker claims the post. Then the child is resumed (SIGCONT): it must stop at
once, without one more block on the wire and without one more row in the journal, and say
the post was lost to it. The other worker then finishes the post: the platform holds exactly
the file's bytes, once.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from journals import child_env
from steadypost import PostOptions, Uploader
from steadypost.drivers.files import snapshot_file
from steadypost.journal import Journal
from steadypost.models import PostState
from steadypost.testing import PlatformSimulator, SimulatorServer
from steadypost.testing import server as sim_server
from tcp_proxy import CountingProxy

LEASE_S = 1.0
BLOCK = 64 * 1024

_FROZEN_WORKER = """
import json, os, signal, sys
from steadypost import PostOptions, RetryPolicy, Uploader
from steadypost.journal import Journal
from steadypost.lifecycle.recorder import PostRun

target, post_id = sys.argv[1], sys.argv[2]
seen = {"blocks": 0, "after_resume": 0, "resumed": False}
real_on_body = PostRun.on_body

def on_body(self, body, position):
    seen["blocks"] += 1
    if seen["resumed"]:
        seen["after_resume"] += 1  # a block went out after the resume
    if seen["blocks"] == 4:  # mid-body: 256 KiB of 1 MiB sent
        print("freezing", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
        seen["resumed"] = True
    real_on_body(self, body, position)

PostRun.on_body = on_body
with Journal(target) as journal, Uploader(
        journal=journal, block_size=65536, post_options=PostOptions(lease_s=float(sys.argv[3])),
        retry=RetryPolicy(max_attempts=2)) as up:
    post = up.upload_post(post_id, chunk_size=1 << 20)
print(json.dumps({"state": post.state.value, "owner": up.owner,
                  "after_resume": seen["after_resume"], "lease_owner": post.lease_owner}))
"""


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    # A body stalled by the freeze is given up by the server within half a second
    # (its bytes kept, as a tus server keeps them), not after the default 5 s.
    monkeypatch.setattr(sim_server.SimRequestHandler, "timeout", 0.5)
    with SimulatorServer(PlatformSimulator()) as server:
        yield server


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_a_worker_frozen_past_its_lease_writes_and_sends_nothing_more(
    journal_target: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    data = os.urandom(1 << 20)
    video.write_bytes(data)
    proxy = CountingProxy(sim.port)
    try:
        with Journal(journal_target) as journal:
            file = snapshot_file(video)
            post = journal.add(path=video, endpoint=f"{proxy.url}/files/", identity=file.identity)
        frozen = subprocess.Popen(
            [sys.executable, "-c", _FROZEN_WORKER, journal_target, post.post_id, str(LEASE_S)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )  # fmt: skip
        try:
            assert frozen.stdout is not None
            assert frozen.stdout.readline().strip() == "freezing", frozen.communicate()[1]
            wait_for(lambda: stopped(frozen.pid))
            wait_for(lambda: proxy.total() >= 4 * BLOCK)  # it was mid-body
            time.sleep(LEASE_S + 0.5)  # its lease runs out while it is frozen
            with Journal(journal_target) as journal:
                taken = journal.claim(owner="another-worker", lease_s=60)
                assert taken is not None
                assert taken.post_id == post.post_id
                events_before = journal.events(post.post_id)
                row_before = journal.get(post.post_id)
                resumed_at = time.monotonic()
                frozen.send_signal(signal.SIGCONT)
                out, err = frozen.communicate(timeout=60)
                assert frozen.returncode == 0, err
                told = json.loads(out.strip().splitlines()[-1])
                # Not one more block, not one more byte on the wire, not one more row.
                assert told["after_resume"] == 0
                assert proxy.bytes_since(resumed_at) == 0
                assert journal.events(post.post_id) == events_before
                assert journal.get(post.post_id) == row_before
                # And it knew it had lost the post.
                assert (told["state"], told["lease_owner"]) == ("uploading", "another-worker")
                journal.release(post.post_id, owner="another-worker", epoch=taken.lease_epoch)
                with Uploader(journal=journal, post_options=PostOptions(lease_s=60)) as other:
                    done = other.upload_post(post.post_id)
        finally:
            if frozen.poll() is None:
                frozen.send_signal(signal.SIGCONT)
                frozen.kill()
                frozen.communicate()
    finally:
        proxy.close()
    assert done.state is PostState.CONFIRMED
    [upload] = [u for u in sim.sim.uploads.values() if u.completed]
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
