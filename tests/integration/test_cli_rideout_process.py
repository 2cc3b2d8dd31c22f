"""Riding out a real outage on the real clock: the real CLI in a subprocess, real sockets.

The platform is the simulator on 127.0.0.1 (``SimulatorServer``) whose clock follows the real
one, so its outage lasts real seconds; the outage begins once the upload's bytes flow (the
platform has answered like the platform by then). The CLI is ``tests/cli_child.py``: the real
command with its circuit breaker opening for 3-8 s instead of 15 s-4 min, so each test takes
seconds; ``steadypost resume`` afterwards is the plain ``python -m steadypost``, which finds
the breaker's state in the journal.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadypost import Journal, PostState
from steadypost.testing import FakeClock, Outage, PlatformSimulator, SimulatorServer

CHILD = Path(__file__).resolve().parent.parent / "cli_child.py"
MiB = 1024 * 1024
SIZE = 8 * MiB
TICK_S = 0.01


class RealClockPlatform:
    """The simulator on a real socket, its fake clock moved along with the real one.

    ``outage_once_bytes_flow(seconds)``: a 503 outage of ``seconds`` real seconds begins as
    soon as the simulator sees the first PATCH.
    """

    def __init__(self) -> None:
        self.clock = FakeClock(start=time.time())
        self.sim = PlatformSimulator(clock=self.clock)
        self.server = SimulatorServer(self.sim)
        self.outage_s: float | None = None
        self.outage_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"{self.server.url}/files/"

    def outage_once_bytes_flow(self, seconds: float) -> None:
        self.outage_s = seconds

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            now = self.clock.advance_to(time.time())
            if self.outage_s is not None and self.outage_at is None and any(
                r.method == "PATCH" for r in self.sim.requests
            ):
                self.outage_at = now
                self.sim.faults.add(Outage(now, now + self.outage_s))

    def __enter__(self) -> RealClockPlatform:
        self.server.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.server.stop()


@pytest.fixture
def platform() -> Iterator[RealClockPlatform]:
    with RealClockPlatform() as running:
        yield running


def make_file(path: Path, size: int = SIZE) -> Path:
    block = hashlib.sha256(path.name.encode()).digest() * 2048
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}


def child(*args: str) -> list[str]:
    return [sys.executable, str(CHILD), "--", *args]


def assert_one_exact_copy(platform: RealClockPlatform, video: Path) -> None:
    [info] = platform.sim.uploads.values()
    assert info.completed
    assert info.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
    with Journal() as journal:
        [post] = journal.list()
    assert post.state is PostState.CONFIRMED


def test_the_real_cli_rides_out_a_real_outage(platform: RealClockPlatform, tmp_path: Path) -> None:
    video = make_file(tmp_path / "holiday.mp4")
    platform.outage_once_bytes_flow(4.0)
    started = time.monotonic()
    proc = subprocess.run(
        child("upload", str(video), "-e", platform.endpoint, "--chunk-size", "64KiB", "--json"),
        capture_output=True, text=True, env=env(), timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [record] = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout: results only
    assert record["state"] == "confirmed"
    assert record["bytes"] == SIZE
    assert_one_exact_copy(platform, video)
    assert platform.outage_at is not None  # the outage did happen mid-upload ...
    assert time.monotonic() - started >= 4.0  # ... and was waited out
    assert "holiday.mp4: platform recovering: server busy (503), circuit open, next try in " \
        in proc.stderr  # fmt: skip
    assert "resuming at byte " in proc.stderr
    faulted = [r for r in platform.sim.requests if r.fault]
    # two failures open the circuit (cli_child's threshold), then one probe per 3-8 s
    assert 2 <= len(faulted) <= 2 + 2, [(r.method, r.at - platform.outage_at) for r in faulted]


def test_ctrl_c_in_the_countdown_exits_130_and_resume_finishes(
    platform: RealClockPlatform, tmp_path: Path
) -> None:
    video = make_file(tmp_path / "holiday.mp4")
    platform.outage_once_bytes_flow(1e6)  # down until the test says otherwise
    proc = subprocess.Popen(
        child("upload", str(video), "-e", platform.endpoint, "--chunk-size", "64KiB"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # blocks until the countdown is announced
        seen.append(line)
        if "platform recovering" in line:
            break
    assert "next try in " in seen[-1], seen
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    with Journal() as journal:
        [post] = journal.list()
    assert post.state is PostState.WAITING
    assert 0 < post.offset < SIZE
    # The platform is down, its circuit open: the journal's figure, said to be that.
    assert f"the server had acknowledged {post.offset:,} of {SIZE:,} bytes" in stderr
    assert "`steadypost resume`" in stderr
    assert stdout.startswith("waiting")

    # The platform is back; a plain `steadypost resume` waits out the breaker's journaled
    # open period if it is not over yet, then goes on from the server's offset.
    platform.sim.faults.clear()
    resumed = subprocess.run(
        [sys.executable, "-m", "steadypost", "resume", "--chunk-size", "64KiB"],
        capture_output=True, text=True, env=env(), timeout=90,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("confirmed")
    assert_one_exact_copy(platform, video)
