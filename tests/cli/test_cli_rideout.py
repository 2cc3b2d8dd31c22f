"""``upload`` and ``resume`` ride out an outage: ``--wait-up-to``, ``--no-wait``, the countdown.

In process (CliRunner) against the platform simulator on a fake clock, so a 20-minute outage
takes milliseconds; the real-clock runs through a subprocess are in
tests/test_cli_rideout_process.py. "What the breaker admits" is checked on the requests the
simulator saw: a handful of failures before the circuit opens, then one probe per open period,
never closer together than the shortest open period.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import DownloadColumn
from rich.progress import Progress as Bars
from test_cli import ENDPOINT, SIZE, Cli, make_video
from test_cli import app as app  # the fixtures, shared
from test_cli import video as video

from steadypost import HostRegistry, Journal, PostState, RetryPolicy
from steadypost.cli import ExitCode
from steadypost.cli.options import parse_duration, parse_wait
from steadypost.cli.progress import (
    Display,
    SpeedColumn,
    StatusColumn,
    TimeLeftColumn,
    countdown,
    span,
)
from steadypost.hosts import DEFAULT_FAILURE_THRESHOLD, DEFAULT_OPEN_BASE_S, DEFAULT_OPEN_JITTER
from steadypost.testing import (
    FakeClock,
    Outage,
    ProcessedButTimeout,
    RequestRecord,
    ResetMidChunk,
    Respond,
)

CHUNK = 64 * 1024
#: The shortest time the breaker stays open (the first period's lower end).
SHORTEST_OPEN_S = DEFAULT_OPEN_BASE_S * (1 - DEFAULT_OPEN_JITTER)


def assert_stored_exactly(app: Cli, video: Path) -> None:
    [info] = app.sim.uploads.values()
    assert info.completed
    assert info.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()


def assert_breaker_paced(faulted: list[RequestRecord]) -> None:
    """Past the failures that open the circuit, each request is a probe, one per open period."""
    probes = faulted[DEFAULT_FAILURE_THRESHOLD - 1 :]
    gaps = [b.at - a.at for a, b in itertools.pairwise(probes)]
    assert all(gap >= SHORTEST_OPEN_S - 1.0 for gap in gaps), gaps  # EARLY_S: 1 s early is fine


# --- riding out ------------------------------------------------------------------------------


def test_a_40_s_outage_is_ridden_out_to_confirmed(app: Cli, video: Path) -> None:
    start = app.clock.now()
    app.sim.faults.add(Outage(start, start + 40))
    result = app.upload(video)
    assert result.exit_code == ExitCode.OK, result.output
    [line] = result.stdout.splitlines()  # stdout: the result only
    assert line.startswith("confirmed")
    [post] = app.posts()
    assert post.state is PostState.CONFIRMED
    assert_stored_exactly(app, video)
    assert app.clock.now() >= start + 40  # it waited the outage out instead of giving up
    # The countdown, with the reason, on stderr; computed from the host's next time.
    assert "holiday.mp4: platform recovering: server busy (503), circuit open, next try in " \
        in result.stderr  # fmt: skip
    assert "Ctrl-C stops" in result.stderr
    # The failures that open the circuit, then at most two probes inside 40 s.
    faulted = app.faulted()
    assert DEFAULT_FAILURE_THRESHOLD <= len(faulted) <= DEFAULT_FAILURE_THRESHOLD + 2
    assert_breaker_paced(faulted)


def test_a_20_minute_outage_is_ridden_out_at_the_breakers_pace(app: Cli, video: Path) -> None:
    start = app.clock.now()
    with Journal(clock=app.clock.now) as journal:  # the platform answered here before: an
        HostRegistry().guard(journal).mark_answered(ENDPOINT, start)  # outage, not a wrong URL
    app.sim.faults.add(Outage(start, start + 1200, mode="refuse"))
    result = app.upload(video)
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout.startswith("confirmed")
    assert_stored_exactly(app, video)
    faulted = app.faulted()
    # Open periods of 15-30 s, 30-60 s, 60-120 s, then 120-240 s: about a dozen probes in
    # 20 minutes (a client retrying every 5 s would have sent 240 requests).
    assert len(faulted) <= DEFAULT_FAILURE_THRESHOLD + 14, len(faulted)
    assert_breaker_paced(faulted)
    assert "next try in " in result.stderr
    assert " min " in result.stderr  # long waits read as minutes, not "214 s"


def test_an_outage_longer_than_wait_up_to_leaves_the_post_waiting(app: Cli, video: Path) -> None:
    start = app.clock.now()
    app.sim.faults.add(Outage(start, start + 7200))
    result = app.upload(video, extra=("--wait-up-to", "10m"))
    assert result.exit_code == ExitCode.WAITING, result.output
    assert result.stdout.startswith("waiting")
    [post] = app.posts()
    assert post.state is PostState.WAITING
    assert post.next_attempt_at is not None
    assert post.next_attempt_ts >= start + 600
    assert app.clock.now() <= start + 600  # never waited past --wait-up-to
    assert all(r.at <= start + 600 for r in app.sim.requests)
    assert "--wait-up-to" in result.stderr
    assert "`steadypost resume` or the daemon goes on" in result.stderr
    assert_breaker_paced(app.faulted())


@pytest.mark.parametrize("flag", [("--no-wait",), ("--wait-up-to", "0")])
def test_no_wait_gives_up_as_before(app: Cli, video: Path, flag: tuple[str, ...]) -> None:
    start = app.clock.now()
    app.sim.faults.add(Outage(start, start + 40))
    result = app.upload(video, extra=flag)
    assert result.exit_code == ExitCode.WAITING, result.output
    assert result.stdout.startswith("waiting")
    assert "circuit open" in result.stdout
    assert app.posts()[0].state is PostState.WAITING
    assert app.clock.now() < start + 40  # gave up inside the outage
    assert len(app.faulted()) == DEFAULT_FAILURE_THRESHOLD  # until the circuit opened, no more
    assert "platform recovering" not in result.stderr


def test_the_retry_deadline_ends_with_wait_up_to(app: Cli, video: Path) -> None:
    # Every PATCH fails but every HEAD works: the circuit never opens (each failure is
    # followed by an answer), so only the retry deadline and the budget stop the run.
    app.sim.faults.add(Respond(status=503, methods={"PATCH"}, times=None))
    start = app.clock.now()
    result = app.upload(video, extra=("--wait-up-to", "5m"))
    assert result.exit_code == ExitCode.WAITING, result.output
    # Without a bound, the run's own 1 h deadline and 12 attempts go on past 5 minutes.
    assert app.clock.now() <= start + 300
    assert all(r.at <= start + 300 for r in app.sim.requests)


def test_the_wait_counts_from_the_last_progress(app: Cli, tmp_path: Path) -> None:
    # The first file (small enough to go in its creation request) rides out a 20-minute
    # outage; then every PATCH fails for 25 minutes more, which the second file (it needs
    # PATCHes) rides out too: 45 minutes in all, but never 30 without progress.
    first = make_video(tmp_path / "a.mp4", 60_000, b"a")
    second = make_video(tmp_path / "b.mp4", SIZE, b"b")
    start = app.clock.now()
    app.sim.faults.add(Outage(start, start + 1200),
                       Respond(status=503, methods={"PATCH"}, start=start + 1200,
                               end=start + 2700, times=None))  # fmt: skip
    result = app.upload(first, second)
    assert result.exit_code == ExitCode.OK, result.output
    assert [p.state for p in app.posts()] == [PostState.CONFIRMED] * 2
    assert app.clock.now() >= start + 2700


def test_an_unconfirmed_post_is_not_waited_for(app: Cli, video: Path) -> None:
    app.sim.faults.add(ProcessedButTimeout(on={"final_patch"}),
                       Respond(status=503, methods={"HEAD"}, times=99))  # fmt: skip
    app.options["retry"] = RetryPolicy(max_attempts=3, deadline_s=None)
    start = app.clock.now()
    result = app.upload(video)
    assert result.exit_code == ExitCode.UNCONFIRMED, result.output
    assert result.stdout.startswith("unconfirmed")
    assert app.clock.now() - start < 15 * 60  # not the 15-30 minutes of its verification


# --- Ctrl-C and resume -----------------------------------------------------------------------


def test_ctrl_c_in_the_countdown_exits_130_and_resume_finishes(app: Cli, video: Path) -> None:
    def ctrl_c(_seconds: float) -> None:
        raise KeyboardInterrupt

    start = app.clock.now()
    # The second chunk breaks; by the retry the platform is down, for two minutes.
    app.sim.faults.add(ResetMidChunk(after_bytes=1000),
                       Outage(start + 0.001, start + 120))  # fmt: skip
    app.sleep = ctrl_c  # the command's countdown; the uploader keeps the fake clock's sleep
    result = app.upload(video)
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    [post] = app.posts()
    assert post.state is PostState.WAITING
    assert post.offset == CHUNK
    # The platform is down (its circuit open): the server cannot be asked, the journal says.
    assert (f"the server had acknowledged {post.offset:,} of {SIZE:,} bytes at the last "
            "checkpoint (it may hold more; it could not be asked now)") in result.stderr
    assert "`steadypost resume`" in result.stderr
    assert "platform recovering" in result.stderr  # it was interrupted in the countdown
    assert result.stdout.startswith("waiting")

    # Run at once, resume rides out the rest of the outage and finishes the same upload.
    app.sleep = None
    resumed = app.run("resume", "--chunk-size", "64KiB")
    assert resumed.exit_code == ExitCode.OK, resumed.output
    assert resumed.stdout.startswith("confirmed")
    assert "platform recovering" in resumed.stderr
    assert f"resuming at byte {post.offset:,} (the server's offset)" in resumed.stderr
    assert_stored_exactly(app, video)
    assert len(app.sim.uploads) == 1
    assert_breaker_paced(app.faulted())  # the reset was the first failure of five


def test_resume_no_wait_leaves_a_post_whose_time_has_not_come(app: Cli, video: Path) -> None:
    start = app.clock.now()
    app.sim.faults.add(Outage(start, start + 600))
    assert app.upload(video, extra=("--no-wait",)).exit_code == ExitCode.WAITING
    seen = len(app.sim.requests)
    result = app.run("resume", "--no-wait")
    assert result.exit_code == ExitCode.WAITING
    assert len(app.sim.requests) == seen
    assert "resume --all" in result.stderr
    result = app.run("resume")  # the default: it waits for the post's time
    assert result.exit_code == ExitCode.OK, result.output
    assert app.posts()[0].state is PostState.CONFIRMED


# --- options and help ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["upload", "resume"])
def test_help_documents_both_options_with_an_example(app: Cli, command: str) -> None:
    result = app.run(command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--wait-up-to DURATION" in text
    assert "--no-wait" in text
    assert "[default: 30m]" in text
    assert f"steadypost {command} " in text
    assert "--wait-up-to 2h" in text


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("90s", 90), ("1h", 3600), ("0", 0), ("45", 45), ("1h30m", 5400),
    ("1.5h", 5400), ("2 min", 120), ("10m 30s", 630), ("1d", 86400),
])  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-5m", "abc", "1x", "m", "1 30", "1e3", "inf", "5m-"])
def test_bad_durations_are_usage_errors(app: Cli, video: Path, text: str) -> None:
    result = app.upload(video, extra=("--wait-up-to", text))
    assert result.exit_code == ExitCode.USAGE
    assert "is not a duration" in result.stderr
    assert app.posts() == []


def test_a_wait_longer_than_a_week_is_refused() -> None:
    assert parse_wait("7d") == 7 * 86400
    with pytest.raises(ValueError, match="daemon"):
        parse_wait("8d")


# --- the countdown and the units on a terminal ---------------------------------------------------


def test_the_countdown_is_computed_at_each_refresh(app: Cli, video: Path) -> None:
    clock = app.clock
    console = Console(file=io.StringIO(), force_terminal=True, width=200, highlight=False)
    display = Display(console, clock=clock.now)
    tracker = display.track("holiday.mp4", SIZE)
    assert app.run("add", str(video), "-e", ENDPOINT).exit_code == 0
    [post] = app.posts()
    post = replace(post, state=PostState.WAITING, last_error=(
        "platform.test is recovering: circuit open, next probe in 26 s"))  # fmt: skip
    tracker.recovering(post, clock.now() + 42)
    assert display.bars is not None
    [task] = display.bars.tasks
    column = StatusColumn(display)
    assert column.render(task).plain == "platform recovering: circuit open, next try in 42 s"
    # no stale speed or time left beside a countdown
    assert SpeedColumn(clock.now).render(task).plain == ""
    assert TimeLeftColumn(clock.now).render(task).plain == ""
    clock.advance(30)
    assert column.render(task).plain == "platform recovering: circuit open, next try in 12 s"
    clock.advance(12)
    assert column.render(task).plain == "platform recovering: circuit open, trying now"
    # the line above the bars says the same, once
    assert "holiday.mp4: platform recovering: circuit open, next try in 42 s" \
        in console.file.getvalue()  # type: ignore[attr-defined]  # fmt: skip


def test_sizes_and_speeds_use_one_unit_family() -> None:
    clock = FakeClock(start=0)
    bars = Bars(console=Console(file=io.StringIO()), get_time=clock.now)
    task_id = bars.add_task("clip.mp4", total=100 * 1024 * 1024)
    for _ in range(5):
        clock.advance(1)
        bars.advance(task_id, 3 * 1024 * 1024)  # 3 MiB a second
    [task] = bars.tasks
    assert SpeedColumn().render(task).plain == "3.0 MiB/s"
    assert "MiB" in DownloadColumn(binary_units=True).render(task).plain


def test_durations_read_as_people_write_them() -> None:
    assert [countdown(s) for s in (0.2, 42, 185, 3725)] == ["1 s", "42 s", "3 min 05 s",
                                                            "1 h 02 min"]  # fmt: skip
    assert [span(s) for s in (90, 1800, 3600, 5400)] == ["1 min 30 s", "30 min", "1 h",
                                                         "1 h 30 min"]  # fmt: skip
