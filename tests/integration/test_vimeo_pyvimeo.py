"""PyVimeo against the Vimeo simulator on 127.0.0.1.

``VimeoClient.API_ROOT`` is overridden on an instance (relative paths go
there); its ``upload()`` asks for the tus approach and hands the simulator's
``upload_link`` to tuspy, which PATCHes the bytes there.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

vimeo = pytest.importorskip("vimeo")

from steadypost.testing import (  # noqa: E402
    FakeClock,
    PlatformSimulator,
    SimulatorServer,
    VimeoConfig,
)

TOKEN = "pyvimeo-test-token"


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    sim = PlatformSimulator(clock=FakeClock(),
                            vimeo=VimeoConfig(require_authorization=f"Bearer {TOKEN}"))
    with SimulatorServer(sim) as running:
        yield running


def test_pyvimeo_uploads_a_video_by_tus(server: SimulatorServer, tmp_path: Path) -> None:
    video = tmp_path / "talk.mp4"
    video.write_bytes(random.Random(4).randbytes(300_001))
    client = vimeo.VimeoClient(token=TOKEN, key="key", secret="secret")
    client.API_ROOT = server.url
    uri = client.upload(str(video), data={"name": "from PyVimeo"})
    [made] = server.sim.vimeo.videos()
    assert uri == made.uri
    assert made.name == "from PyVimeo"
    assert made.upload_status == "complete"
    assert made.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
    patches = [r for r in server.sim.requests if r.method == "PATCH"]
    assert patches  # the bytes went by tus to the simulator's upload link
