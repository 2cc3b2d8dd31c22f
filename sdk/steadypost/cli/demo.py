"""``steadypost demo``: a platform's bad day, rehearsed on this machine in well under a minute.

It starts steadypost's platform simulator on 127.0.0.1 and uploads a
generated 24 MiB video while the simulator misbehaves on cue:

1. it is down at first (503 with ``Retry-After: 30``): steadypost waits as asked;
2. the connection drops in the middle of the 4th chunk: steadypost asks the
   server's offset and resumes from there, not from byte 0;
3. the last chunk is stored but answered with a 500, and the server then
   stays busy for 20 minutes: steadypost cannot tell whether the video
   arrived, so it marks the post ``unconfirmed`` instead of sending it again;
4. 15-30 minutes later (simulated) it asks the server, which now answers:
   the post is ``confirmed``, posted exactly once.

Simulated time runs on a :class:`~steadypost.testing.FakeClock` shared by the
simulator, the uploader and a temporary journal (never yours): a 2-minute
wait takes under a second.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from steadypost import Journal, Post, PostState, Progress, ProgressKind, RetryPolicy, Uploader
from steadypost.cli.app import App
from steadypost.cli.exitcodes import ExitCode
from steadypost.cli.options import common_options, pass_app
from steadypost.cli.output import print_timeline, size, when
from steadypost.cli.posts import print_list

if TYPE_CHECKING:
    from steadypost.testing import FakeClock, PlatformSimulator

MiB = 1024 * 1024
SIZE = 24 * MiB
CHUNK = 4 * MiB
DOWN_S = 75.0
BUSY_S = 20 * 60.0


def make_video(path: Path) -> str:
    """Write SIZE random bytes; return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(SIZE // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


class Script:
    """Plays the platform's bad day on the simulator as the upload reaches each point."""

    def __init__(self, sim: PlatformSimulator, clock: FakeClock) -> None:
        self.sim, self.clock = sim, clock
        self.reset_armed = self.busy_armed = False

    def __call__(self, p: Progress) -> None:
        from steadypost.testing import ResetMidChunk, Respond

        if p.kind is not ProgressKind.BYTES:
            return
        if not self.reset_armed and p.acknowledged >= 3 * CHUNK:
            self.reset_armed = True  # the 4th chunk's connection drops half-way
            self.sim.faults.add(ResetMidChunk(after_bytes=CHUNK // 2, times=1))
        if not self.busy_armed and p.acknowledged >= SIZE - CHUNK:
            self.busy_armed = True  # after the last chunk, the server stays busy for a while
            now = self.clock.now()
            self.sim.faults.add(Respond(status=503, retry_after=120, methods={"HEAD"},
                                        start=now, end=now + BUSY_S, times=None))  # fmt: skip


@click.command(short_help="Rehearse an outage on a simulated platform.")
@click.option("--pace", type=click.FloatRange(min=0), default=1.0, hidden=True,
              help="Scale the real time each simulated wait takes (0: none).")
@common_options
@pass_app
def demo(app: App, pace: float) -> None:
    """Rehearse an outage: upload a video through a failing (simulated) platform.

    Runs on this machine only (127.0.0.1), in well under a minute, with a
    temporary journal: nothing of yours is touched. You see the polite
    waits, the resume from the server's offset after a dropped connection,
    the 'unconfirmed' post after an ambiguous answer, and its later
    verification (15-30 simulated minutes, compressed into seconds).

    \b
    Examples:
      steadypost demo
      NO_COLOR=1 steadypost demo 2> story.log
    """
    from steadypost.testing import (
        FakeClock,
        Outage,
        PlatformSimulator,
        ProcessedButError,
        SimulatorServer,
    )

    clock = FakeClock(start=time.time())
    now = clock.now()
    sim = PlatformSimulator(clock=clock, faults=[
        Outage(now, now + DOWN_S, retry_after=30),
        ProcessedButError(on={"final_patch"}),
    ])  # fmt: skip
    say = app.rich_err().print

    def sleep(seconds: float) -> None:
        """A glimpse of real time while simulated time runs through the wait."""
        glimpse = min(0.5, 0.1 + seconds / 150) * pace
        steps = max(1, round(glimpse / 0.05))
        for _ in range(steps):
            time.sleep(glimpse / steps)
            clock.advance(seconds / steps)

    with tempfile.TemporaryDirectory(prefix="steadypost-demo-") as tmp, \
            SimulatorServer(sim) as server, \
            Journal(Path(tmp) / "journal.sqlite3", clock=clock.now) as journal:  # fmt: skip
        video = Path(tmp) / "holiday.mp4"
        sha = make_video(video)
        endpoint = f"{server.url}/files/"
        say("[bold]steadypost demo[/]: a platform's bad day, rehearsed on this machine\n")
        say(f"  platform  {endpoint} (simulated; simulated time runs fast)")
        say(f"  video     holiday.mp4, {size(SIZE)}, sent in {size(CHUNK)} chunks")
        say(f"  journal   {escape(str(journal.path))} (temporary, not yours)")
        say("  script    down for 75 s (503, Retry-After 30); the connection drops in the 4th "
            "chunk;\n            the last chunk is stored but answered 500, then the server "
            "stays busy for 20 min\n")  # fmt: skip
        policy = RetryPolicy(base_s=2.0, cap_s=60.0, max_attempts=5, deadline_s=None)
        started = time.monotonic()
        with Uploader(sleep=sleep, clock=clock.now, journal=journal, chunk_size=CHUNK,
                      retry=policy) as uploader:  # fmt: skip
            post = uploader.add(video, endpoint, metadata={"filename": video.name})
            script = Script(sim, clock)
            with app.display_on(clock.now) as display:
                tracker = display.track(video.name, SIZE)

                def on_progress(p: Progress) -> None:
                    tracker(p)
                    script(p)

                post = uploader.upload_post(post.post_id, on_progress=on_progress)
                tracker.finish(post)
            if post.state is PostState.UNCONFIRMED:
                say("\nEvery byte went out, but no answer said whether the video arrived:")
            app.print_posts([post], as_json=False)
            if post.state is PostState.UNCONFIRMED:
                post = _verify_later(app, uploader, post, clock, pace)
        _story(app, sim, post, sha, time.monotonic() - started)
        app.out.line()
        app.out.line("The journal (as `steadypost list` and `show` print it):", style="bold")
        print_list(app.out, journal.list(), clock.now())
        app.out.line(f"\ntimeline of {post.post_id}:")
        print_timeline(app.out, journal.events(post.post_id))
    ok = post.state is PostState.CONFIRMED and len(sim.uploads) == 1
    raise click.exceptions.Exit(ExitCode.OK if ok else ExitCode.ERROR)


def _verify_later(app: App, uploader: Uploader, post: Post, clock: FakeClock,
                  pace: float) -> Post:  # fmt: skip
    due = post.next_attempt_ts
    assert due is not None
    say = app.rich_err().print
    gap = due - clock.now()
    say("\nSending it again now could publish the video twice, so steadypost waits and asks.")
    say(f"Fast-forwarding {gap / 60:.0f} simulated minutes to the check at "
        f"{when(due, clock.now())}...")  # fmt: skip
    for _ in range(15):
        time.sleep(0.1 * pace)
        clock.advance(gap / 15)
    clock.advance_to(due + 1.0)  # past it, whatever the rounding
    checked = [p for p in uploader.verify_due() if p.post_id == post.post_id]
    result = checked[0] if checked else uploader.journal.get(post.post_id)
    say("The platform answers the check:")
    app.print_posts([result], as_json=False)
    return result


def _story(app: App, sim: PlatformSimulator, post: Post, sha: str, real_s: float) -> None:
    say = app.rich_err().print
    requests = sim.requests
    faulted = sum(1 for r in requests if r.fault)
    received = sum(r.body_bytes for r in requests)
    upload_id = (post.upload_url or "").rstrip("/").rsplit("/", 1)[-1]
    stored = hashlib.sha256(sim.upload_bytes(upload_id)).hexdigest() if upload_id else ""
    say(f"\n[bold]What happened[/] ({real_s:.1f} s of real time)")
    say(f"  requests the server saw: {len(requests)}, {faulted} of them failed on purpose")
    say(f"  bytes the server received: {received:,} for a {SIZE:,}-byte file "
        f"({size(max(0, received - SIZE))} of the chunk cut by the reset, sent again)")  # fmt: skip
    verdict = "matches" if stored == sha else "DIFFERS FROM"
    say(f"  server's copy: sha256 {stored[:16]}... {verdict} the file")
    say(f"  uploads on the platform: {len(sim.uploads)} (posted exactly once)")
