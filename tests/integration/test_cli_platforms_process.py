"""The real CLI in a subprocess posting to the YouTube, Instagram and X simulators on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadypost.testing import (
    PlatformSimulator,
    ProcessedButError,
    SimulatorServer,
)

SCRIPT = Path(sys.executable).with_name("steadypost")


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(PlatformSimulator()) as running:  # the CLI runs on the real clock
        yield running


def run(*args: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEADYPOST_TOKEN": token, "COLUMNS": "120"}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip


def test_upload_to_youtube_through_the_cli_survives_a_lost_final_answer(
    server: SimulatorServer, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(random.Random(2).randbytes(3 * 256 * 1024 + 99))
    server.sim.faults.add(ProcessedButError(on={"final_patch"}))
    proc = run("upload", str(video), "--platform", "youtube", "-e", server.url,
               "-m", "title=From the CLI", "--platform-option", "chunk_size=262144", "--json",
               token="ya29.cli-token")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [record] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert record["state"] == "confirmed"
    [made] = server.sim.youtube.videos()
    assert made.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
    assert made.title == "From the CLI"
    assert "ya29.cli-token" not in proc.stdout + proc.stderr


def test_upload_to_x_and_instagram_through_the_cli(server: SimulatorServer,
                                                   tmp_path: Path) -> None:  # fmt: skip
    video = tmp_path / "reel.mp4"
    video.write_bytes(random.Random(5).randbytes(400_000))
    proc = run("upload", str(video), "--platform", "x", "-e", server.url, "-m", "text=hello",
               "--json", token="x-cli-token")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [p.text for p in server.sim.x.posts()] == ["hello"]
    other = tmp_path / "reel2.mp4"
    other.write_bytes(random.Random(6).randbytes(300_000))
    proc = run("upload", str(other), "--platform", "instagram", "-e", server.url,
               "--platform-option", "ig_user_id=17841400000000002",
               "--platform-option", "poll_s=0.2", "-m", "caption=hi", "--json",
               token="ig-cli-token")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [reel] = server.sim.instagram.published()
    assert reel.caption == "hi"
