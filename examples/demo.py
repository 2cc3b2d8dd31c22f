"""A one-minute tour: upload a video through a platform outage, with nothing else running.

    python examples/demo.py

It starts steadypost's platform simulator on 127.0.0.1, makes a 24 MiB file,
and uploads it while the simulator is down (503 with Retry-After), then drops
the connection in the middle of a chunk. You see the polite waits (simulated
time runs fast: each wait takes a moment of real time), the resume from the
server's offset (bytes the server holds are not sent again), and the check
that the server's copy matches the file byte for byte.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from steadypost import Progress, ProgressKind, RetryPolicy, Uploader
from steadypost.testing import FakeClock, Outage, PlatformSimulator, ResetMidChunk, SimulatorServer

MiB = 1024 * 1024
SIZE = 24 * MiB
CHUNK = 4 * MiB


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_video(folder: Path) -> Path:
    path = folder / "holiday.mp4"
    with path.open("wb") as f:
        for _ in range(SIZE // MiB):
            f.write(os.urandom(MiB))
    return path


class Bar:
    """A plain progress line on stderr (the CLI draws a rich bar instead)."""

    def __init__(self) -> None:
        self.last = -1

    def __call__(self, p: Progress) -> None:
        if p.kind is ProgressKind.WAIT:
            say(f"  ... {p.message}")
            return
        pct = int(100 * p.sent / p.total) if p.total else 100
        if pct // 10 != self.last // 10:
            self.last = pct
            say(f"  {pct:3d}% sent, {p.acknowledged / MiB:5.1f} MiB confirmed by the server")


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    clock = FakeClock(start=time.time())
    now = clock.now()
    faults = [
        Outage(now, now + 90, mode="503", retry_after=30),  # down for 90 simulated seconds
        ResetMidChunk(after_bytes=CHUNK // 2, times=1),  # then a connection reset mid-chunk
    ]
    sim = PlatformSimulator(clock=clock, faults=faults)

    def fast_sleep(seconds: float) -> None:
        time.sleep(min(seconds, 0.4))  # a glimpse of real time...
        clock.sleep(seconds)  # ...while simulated time jumps ahead

    with tempfile.TemporaryDirectory() as tmp, SimulatorServer(sim) as server:
        video = make_video(Path(tmp))
        endpoint = f"{server.url}/files/"
        say(f"simulated platform at {endpoint}: down for the next 90 s, then flaky")
        say(f"uploading {video.name} ({SIZE // MiB} MiB) in {CHUNK // MiB} MiB chunks")
        started = time.monotonic()
        policy = RetryPolicy(base_s=2.0, cap_s=60.0)
        with Uploader(chunk_size=CHUNK, sleep=fast_sleep, clock=clock.now, retry=policy) as up:
            result = up.upload(video, endpoint, metadata={"caption": "demo"}, on_progress=Bar())
        upload_id = result.upload_url.rstrip("/").rsplit("/", 1)[-1]
        stored = hashlib.sha256(sim.upload_bytes(upload_id)).hexdigest()
        waits = clock.sleeps
        say("")
        say(f"done in {time.monotonic() - started:.1f} s real time")
        say(f"  waited {len(waits)} times, {sum(waits):.0f} simulated seconds in all")
        say(f"  requests: {result.requests}; failed ones the server saw: "
            f"{sum(1 for r in sim.requests if r.fault)}")  # fmt: skip
        again = (result.bytes_sent - SIZE) / MiB
        say(f"  bytes sent {result.bytes_sent:,} for a {SIZE:,}-byte file: {again:.1f} MiB twice, "
            "the chunk cut by the reset (checksummed, so the server dropped its part)")  # fmt: skip
        same = stored == result.sha256
        verdict = "matches" if same else "DIFFERS FROM"
        say(f"  server copy sha256 {stored[:16]}... {verdict} the file")
        print(result.upload_url)
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
