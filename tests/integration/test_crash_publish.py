"""A run that dies after sending the publish, before journaling its answer, is not resent.

The platform here ignores idempotency keys (every ``POST /posts`` publishes a copy), so a
resent publish would be a second copy of the video. A child process uploads a post and
kills itself (SIGKILL) the moment the platform has answered its publish request; the
next run (another worker taking the post over, as a daemon of the fleet would) finds the
publish journaled as sent with no outcome, and checks instead of publishing again. The
same holds after a Ctrl-C at that moment, in process.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from journals import child_env
from steadypost import PostState, RetryPolicy, Uploader
from steadypost.journal import Journal
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.tus.adapters import PostApiPlatform
from steadypost.testing import FakeClock, PlatformSimulator, SimulatorServer

_DIES_AFTER_PUBLISH = """
import os, signal, sys
from steadypost import Uploader
from steadypost.journal import Journal
from steadypost.platforms.tus import adapters

real = adapters.PostApiPlatform._publish

def publish_then_die(self, post, upload_url):
    flow = real(self, post, upload_url)
    request = next(flow)
    response = yield request  # the platform has it, and has answered...
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before journaling that

adapters.PostApiPlatform._publish = publish_then_die
with Journal(sys.argv[1]) as journal, Uploader(journal=journal) as up:
    up.upload_post(sys.argv[2])
"""


def platform(base: str) -> PostApiPlatform:
    return PostApiPlatform(HeaderPolicy(), publish_url=f"{base}/posts",
                           status_url=f"{base}/posts/{{post_id}}/status")  # fmt: skip


def test_a_publish_whose_answer_died_with_its_process_is_checked_not_resent(
    journal_target: str, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(50_000))
    sim = PlatformSimulator(ignore_idempotency=True)
    with SimulatorServer(sim) as server, Journal(journal_target) as journal:
        with Uploader(journal=journal) as up:
            post = up.add(video, f"{server.url}/files/", platform=platform(server.url))
        child = subprocess.run([sys.executable, "-c", _DIES_AFTER_PUBLISH, journal_target,
                                post.post_id], env=child_env(), capture_output=True,
                               timeout=60, check=False)  # fmt: skip
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert sim.published_copies(post.post_id) == 1
        assert journal.get(post.post_id).state is PostState.UPLOADING  # as the kill left it
        with Uploader(journal=journal) as other:  # a worker taking it over
            after = other.upload_post(post.post_id)
            assert after.state is PostState.UNCONFIRMED
            assert sim.published_copies(post.post_id) == 1  # not sent again
            [checked] = other.verify_due(all=True)
        assert checked.state is PostState.CONFIRMED
        assert sim.published_copies(post.post_id) == 1


def test_a_publish_cut_off_by_ctrl_c_is_checked_not_resent(journal_target: str,
                                                           tmp_path: Path) -> None:  # fmt: skip
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(20_000))
    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, ignore_idempotency=True)
    transport = sim.transport()

    class CtrlCAfterPublish(httpx.BaseTransport):
        armed = True

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = transport.handle_request(request)
            if self.armed and request.method == "POST" and request.url.path == "/posts":
                self.armed = False
                raise KeyboardInterrupt  # the platform published; the answer is lost
            return response

    client = httpx.Client(transport=CtrlCAfterPublish(), base_url="https://platform.test")
    with Journal(journal_target, clock=clock.now) as journal, Uploader(
        client=client, journal=journal, clock=clock.now, sleep=clock.sleep,
        rng=random.Random(1), retry=RetryPolicy(max_attempts=3),
    ) as up:  # fmt: skip
        post = up.add(video, "https://platform.test/files/", platform=platform(
            "https://platform.test"))
        with contextlib.suppress(KeyboardInterrupt):
            up.upload_post(post.post_id)
        assert sim.published_copies(post.post_id) == 1
        assert journal.get(post.post_id).state is PostState.WAITING  # interrupted: due at once
        again = up.upload_post(post.post_id)
        assert again.state is PostState.UNCONFIRMED
        assert sim.published_copies(post.post_id) == 1
        clock.advance(3600)
        [checked] = up.verify_due()
        assert checked.state is PostState.CONFIRMED
        assert sim.published_copies(post.post_id) == 1
