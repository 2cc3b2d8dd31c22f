"""The CLI tells the truth, live: times and shares computed when shown, one line per retry,
help that matches the JSON, several ids, -q/-v everywhere, a summary, --dry-run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner
from test_cli import ENDPOINT, Cli, json_lines, make_video

from steadypost import Journal, PostState, RetryPolicy
from steadypost.cli import ExitCode, cli
from steadypost.cli.app import Runtime
from steadypost.cli.main import COMMANDS, load_command
from steadypost.cli.output import until
from steadypost.cli.posts import print_list, short_ids
from steadypost.cli.term import Term
from steadypost.journal import make_owner
from steadypost.models import FileIdentity
from steadypost.testing import FakeClock, PlatformSimulator, Respond

MIN = 60.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture
def app(clock: FakeClock) -> Cli:
    sim = PlatformSimulator(clock=clock)
    return Cli(clock, sim, {"client": httpx.Client(transport=sim.transport()),
                            "sleep": clock.sleep})  # fmt: skip


def _waiting_post(app: Cli, video: Path, *, offset: int, wait_s: float) -> str:
    with Journal(clock=app.clock.now) as journal:
        post = journal.add(path=video, endpoint=ENDPOINT,
                           identity=_identity(video))  # fmt: skip
        owner = make_owner()
        journal.transition(post.post_id, PostState.UPLOADING, owner=owner)
        journal.transition(post.post_id, PostState.WAITING, owner=owner, offset=offset,
                           next_attempt_at=app.clock.now() + wait_s,
                           last_error="server busy (503), retrying in 600 s")  # fmt: skip
        return post.post_id


def _identity(video: Path):  # type: ignore[no-untyped-def]
    from steadypost import snapshot_file

    return snapshot_file(video).identity


# --- no arguments, help --------------------------------------------------------------------


def test_steadypost_alone_shows_the_help_and_exits_0(app: Cli) -> None:
    result = app.run()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert "Post your videos exactly once" in result.stdout
    assert "upload" in result.stdout
    assert "login" in result.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_quiet_and_verbose(app: Cli, command: str) -> None:
    names = {o for p in load_command(command).params for o in p.opts}
    assert {"-q", "--quiet", "-v", "--verbose"} <= names
    result = app.run(command, "-q", "-v", "--help")
    assert result.exit_code == 0, result.output


def test_status_help_describes_what_status_json_prints(app: Cli) -> None:
    shown = app.run("status", "--json")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    helptext = app.run("status", "--help").stdout
    block = helptext.split("With --json, one object:", 1)[1].split("Times are", 1)[0]
    described = dict(re.findall(r"^\s+(\w+)\s{2,}(.+)$", block, re.M))
    assert set(document) == set(described)
    for key in ("daemon", "counts", "next_upload", "last_error"):
        value = document[key]
        if value is None:
            continue  # null in an empty journal; next_upload's fields are checked below
        braces = block.split(key, 1)[1].split("}", 1)[0]
        assert set(value) <= set(re.findall(r"\w+", braces)), key
    assert set(document["counts"]) == {s.value for s in PostState}
    with Journal(clock=app.clock.now) as journal:
        journal.add(path=Path("/v.mp4"), endpoint=ENDPOINT, identity=FileIdentity(1, 1))
    busy = json.loads(app.run("status", "--json").stdout)
    braces = block.split("next_upload", 1)[1].split("}", 1)[0]
    assert set(busy["next_upload"]) == set(re.findall(r"\w+", braces))


# --- list and show: computed when shown ------------------------------------------------------


def test_list_and_show_count_down_at_display_time(app: Cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", size=1000)
    post_id = _waiting_post(app, video, offset=420, wait_s=10 * MIN)
    first = app.run("list")
    assert "next try in 10 min" in first.stdout
    assert "42%" in first.stdout.splitlines()[1].split()  # the SENT column
    assert "retrying in 600 s" not in first.stdout  # the frozen countdown of the error is gone
    app.clock.advance(7 * MIN + 10)
    later = app.run("list")
    assert "next try in 3 min" in later.stdout, later.stdout
    shown = app.run("show", post_id)
    assert "42% (420 of 1,000 bytes)" in shown.stdout
    assert "42% on the server" in shown.stdout
    assert "next try in 3 min" in shown.stdout
    app.clock.advance(3 * MIN)
    assert "next try now" in app.run("list").stdout


def test_until_reads_like_a_person() -> None:
    assert [until(1000 + s, 1000) for s in (0, 0.4, 1, 42, 61, 180, 3600, 5400)] == [
        "now", "now", "in 1 s", "in 42 s", "in 2 min", "in 3 min", "in 1 h", "in 1 h 30 min"]


class _Narrow(Term):
    def __init__(self, width: int) -> None:
        super().__init__()
        self._width = width

    @property
    def width(self) -> int | None:
        return self._width


def test_list_lines_fit_the_terminal_width(
    app: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = [make_video(tmp_path / f"a-very-long-file-name-of-a-holiday-video-{n}.mp4", 500)
              for n in range(3)]  # fmt: skip
    for video in videos:
        _waiting_post(app, video, offset=100, wait_s=5 * MIN)
    with Journal(clock=app.clock.now) as journal:
        posts = journal.list()
    print_list(_Narrow(80), posts, app.clock.now())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert all(len(line) <= 80 for line in lines), lines
    ids = [line.split()[0] for line in lines[1:]]
    assert ids == short_ids([p.post_id for p in posts])  # still unique, still usable
    assert all(len(i) >= 12 for i in ids)
    assert all(".mp4" in line for line in lines[1:])  # a cut file name keeps its end
    print_list(_Narrow(1000), posts, app.clock.now())
    assert [p.post_id in out for p, out in zip(posts, capsys.readouterr().out.splitlines()[1:],
                                                strict=True)] == [True] * 3  # fmt: skip


# --- one line per retry ------------------------------------------------------------------------


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["--debug"]])
def test_each_retry_is_one_line(app: Cli, tmp_path: Path, verbosity: list[str]) -> None:
    video = make_video(tmp_path / "clip.mp4", size=200_000)
    app.sim.faults.add(Respond(status=503, retry_after=30, times=2, methods={"OPTIONS"}))
    result = app.run(*verbosity, "upload", str(video), "-e", ENDPOINT, "--chunk-size", "64KiB")
    assert result.exit_code == 0, result.output
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert len(retries) == 2, result.stderr
    assert all("server busy (503), retrying in 30 s" in line for line in retries)


def test_verify_logs_each_retry_once_too(app: Cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", size=1000)
    with Journal(clock=app.clock.now) as journal:
        post = journal.add(path=video, endpoint=ENDPOINT, identity=_identity(video))
        owner = make_owner()
        journal.transition(post.post_id, PostState.UPLOADING, owner=owner)
        journal.checkpoint(post.post_id, owner=owner, upload_url=f"{ENDPOINT}nope")
        journal.transition(post.post_id, PostState.UNCONFIRMED, owner=owner,
                           next_attempt_at=app.clock.now())  # fmt: skip
    app.sim.faults.add(Respond(status=503, retry_after=5, times=2, methods={"HEAD"}))
    app.options["retry"] = RetryPolicy(max_attempts=4, deadline_s=None)
    result = app.run("-v", "verify")
    waits = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert len(waits) == 2, result.stderr


# --- quiet, summary, cancel several -----------------------------------------------------------


def test_quiet_prints_only_the_results(app: Cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", size=200_000)
    result = app.run("upload", str(video), "-e", ENDPOINT, "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("confirmed")


def test_a_summary_line_ends_every_upload(app: Cli, tmp_path: Path) -> None:
    videos = [make_video(tmp_path / f"v{n}.mp4", size=100_000, seed=bytes([n])) for n in range(3)]
    result = app.run("upload", *map(str, videos), "-e", ENDPOINT, "--chunk-size", "64KiB")
    assert result.exit_code == 0, result.output
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(r"3 posts in \d+ s: 3 confirmed, 0 unconfirmed, 0 waiting, 0 failed; "
                        r"293\.0 KiB sent", last), last  # fmt: skip
    again = app.run("upload", *map(str, videos), "-e", ENDPOINT)  # all posted already
    assert again.stderr.splitlines()[-1].endswith("3 confirmed, 0 unconfirmed, 0 waiting, "
                                                  "0 failed; 0 B sent")  # fmt: skip


def test_cancel_takes_several_ids(app: Cli, tmp_path: Path) -> None:
    ids = [_waiting_post(app, make_video(tmp_path / f"c{n}.mp4", 300, seed=bytes([n])),
                         offset=0, wait_s=MIN) for n in range(3)]  # fmt: skip
    result = app.run("cancel", ids[0], ids[1], "--json")
    assert result.exit_code == 0, result.output
    assert [r["post_id"] for r in json_lines(result.stdout)] == ids[:2]
    states = {p.post_id: p.state for p in app.posts()}
    assert [states[i] for i in ids] == [PostState.CANCELLED, PostState.CANCELLED,
                                        PostState.WAITING]  # fmt: skip
    unknown = app.run("cancel", ids[2], "NOPE")
    assert unknown.exit_code == ExitCode.USAGE
    assert {p.post_id: p.state for p in app.posts()}[ids[2]] is PostState.WAITING


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_says_what_would_be_posted_and_sends_nothing(app: Cli, tmp_path: Path) -> None:
    posted = make_video(tmp_path / "posted.mp4", size=100_000, seed=b"p")
    assert app.run("upload", str(posted), "-e", ENDPOINT).exit_code == 0
    fresh = make_video(tmp_path / "fresh.mp4", size=100_000, seed=b"f")
    waiting = make_video(tmp_path / "waiting.mp4", size=1000, seed=b"w")
    waiting_id = _waiting_post(app, waiting, offset=500, wait_s=MIN)
    before = (len(app.sim.requests), [(p.post_id, p.state) for p in app.posts()])
    result = app.run("upload", str(fresh), str(posted), str(waiting), "-e", ENDPOINT, "-n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("would post     fresh.mp4 (97.7 KiB) to https://platform.test")
    assert lines[1].startswith("already posted posted.mp4: post ")
    assert lines[2] == f"would go on    waiting.mp4: post {waiting_id} (waiting, 50% on the server)"
    assert "nothing was sent, nothing was journaled" in result.stderr
    assert (len(app.sim.requests), [(p.post_id, p.state) for p in app.posts()]) == before
    again = app.run("upload", str(posted), "-e", ENDPOINT, "-n", "--new", "--json")
    assert json_lines(again.stdout)[0]["action"] == "post"
    resume = app.run("resume", "-n")
    assert f"left for later waiting.mp4: post {waiting_id}" in resume.stdout
    app.clock.advance(2 * MIN)
    assert f"would resume   waiting.mp4: post {waiting_id}" in app.run("resume", "-n").stdout
    assert (len(app.sim.requests), [(p.post_id, p.state) for p in app.posts()]) == before


# --- -j in process: several at once, each site its own pace ------------------------------------


def test_upload_j3_posts_every_file_once(app: Cli, tmp_path: Path) -> None:
    videos = [make_video(tmp_path / f"j{n}.mp4", size=150_000, seed=bytes([n])) for n in range(5)]
    app.sim.faults.add(Respond(status=503, retry_after=2, times=3, methods={"PATCH"}))
    result = app.run("upload", *map(str, videos), "-e", ENDPOINT, "-j", "3",
                     "--chunk-size", "64KiB", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    records = json_lines(result.stdout)
    assert [Path(r["file"]).name for r in records] == [v.name for v in videos]  # in order
    assert {r["state"] for r in records} == {"confirmed"}
    assert len(app.sim.uploads) == 5
    assert all(info.completed for info in app.sim.uploads.values())


def test_bwlimit_is_taken_and_released(app: Cli, tmp_path: Path) -> None:
    from steadypost.drivers import bandwidth

    video = make_video(tmp_path / "clip.mp4", size=10_000)
    result = app.run("upload", str(video), "-e", ENDPOINT, "--bwlimit", "4M")
    assert result.exit_code == 0, result.output
    assert bandwidth.PROCESS.rate is None  # the command's cap ends with it
    bad = app.run("upload", str(video), "-e", ENDPOINT, "--bwlimit", "fast")
    assert bad.exit_code == ExitCode.USAGE
    assert "is not a rate" in bad.stderr


def test_commands_json_is_untouched_by_the_summary(app: Cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", size=50_000)
    result = app.run("upload", str(video), "-e", ENDPOINT, "--json")
    assert [r["state"] for r in json_lines(result.stdout)] == ["confirmed"]


def test_the_group_runs_with_runtime_only_as_a_hook() -> None:
    assert isinstance(cli, click.Group)
    assert CliRunner().invoke(cli, ["list"], obj=Runtime()).exit_code == 0


# --- the bar: one unit family, one countdown; the bandwidth cap ----------------------------------


def test_the_bar_speaks_one_unit_family_and_one_countdown(clock: FakeClock) -> None:
    import io

    from rich.console import Console

    from steadypost.cli.progress import Display, SpeedColumn, StatusColumn
    from steadypost.models import Progress, ProgressKind

    console = Console(file=io.StringIO(), force_terminal=True, width=200, highlight=False,
                      no_color=True)
    display = Display(console, clock=clock.now)
    tracker = display.track("clip.mp4", 300 * 1024 * 1024)
    tracker(Progress(ProgressKind.BYTES, 0, 300 * 1024 * 1024, sent=12 * 1024 * 1024))
    assert display.bars is not None
    [task] = display.bars.tasks
    bar = "".join(c.render(task).plain for c in display.bars.columns[2:4]  # bytes, speed
                  if hasattr(c, "render"))  # fmt: skip
    units = set(re.findall(r"[KMGT]i?B", bar))
    assert units, bar
    assert all("iB" in u for u in units), bar  # KiB, MiB, GiB: never MB beside MiB
    # A retry's wait and a recovering platform count down alike ("2 min 00 s", "42 s").
    tracker(Progress(ProgressKind.WAIT, 0, 1, wait_s=120, message="server busy (503), "
                     "retrying in 120 s", reason="server busy (503)"))  # fmt: skip
    assert StatusColumn(display).render(task).plain == "server busy (503), retrying in 2 min 00 s"
    assert SpeedColumn(clock.now).render(task).plain == ""  # no stale speed during a wait
    clock.advance(78)
    assert StatusColumn(display).render(task).plain == "server busy (503), retrying in 42 s"
    assert "clip.mp4: server busy (503), retrying in 2 min 00 s" in console.file.getvalue()  # type: ignore[attr-defined]


def test_the_bandwidth_bucket_holds_the_rate() -> None:
    from steadypost.drivers.bandwidth import BURST_S, Bandwidth

    fake = FakeClock(start=0.0)
    bucket = Bandwidth(1_000_000, clock=fake.now, sleep=fake.sleep)
    sent = 0
    while sent < 5_000_000:
        bucket.take(100_000)
        sent += 100_000
    # 5 MB at 1 MB/s, the first half-second's worth sent at once: 4.5 s of waiting
    assert fake.now() == pytest.approx(5.0 - BURST_S, abs=0.11)
    assert max(fake.sleeps) <= 0.2  # sliced: a cancellation is seen within 0.2 s
    free = Bandwidth(None, clock=fake.now, sleep=fake.sleep)
    assert free.take(10**9) == 0.0

    def cancelled() -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        Bandwidth(1000, clock=fake.now, sleep=fake.sleep).take(10**6, cancelled)
