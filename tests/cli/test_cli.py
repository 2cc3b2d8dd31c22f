"""The ``steadypost`` commands in process (CliRunner), against the in-process platform simulator.

The hidden test hook: ``CliRunner().invoke(cli, args, obj=Runtime(...))`` hands the CLI a
fake clock, the simulator's transport and an instant sleeper. The journal is the default
one under ``$STEADYPOST_HOME`` (a fresh tmp dir per test, see conftest.py), so state
carries over from one invocation to the next as it does for a user.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from steadypost import Journal, Post, PostState, RetryPolicy
from steadypost.cli import ExitCode, cli
from steadypost.cli.app import Runtime
from steadypost.paths import config_dir, default_journal_path
from steadypost.platforms.tus import DEFAULT_CREATION_WITH_UPLOAD_MAX
from steadypost.testing import (
    FakeClock,
    Outage,
    PlatformSimulator,
    ProcessedButTimeout,
    RequestRecord,
    ResetMidChunk,
    Respond,
)
from tusd import TusServer

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
SIZE = 256_000
TOKEN = "tok-" + "s3cr3t" * 4


@dataclass
class Cli:
    clock: FakeClock
    sim: PlatformSimulator
    options: dict[str, Any] = field(default_factory=dict)
    sleep: Any = None
    """The command's own sleep (its countdown); ``None``: the real one."""

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        runtime = Runtime(clock=self.clock.now, uploader_options=self.options, sleep=self.sleep)
        return CliRunner().invoke(cli, list(args), obj=runtime, env=env)

    def upload(self, *files: Path, extra: tuple[str, ...] = ()) -> Result:
        paths = [str(f) for f in files]
        return self.run("upload", *paths, "--endpoint", ENDPOINT, "--chunk-size", "64KiB", *extra)

    def posts(self) -> list[Post]:
        with Journal(clock=self.clock.now) as journal:
            return journal.list()

    def faulted(self) -> list[RequestRecord]:
        """The requests the simulator answered with an injected fault."""
        return [r for r in self.sim.requests if r.fault]




@pytest.fixture
def app(clock: FakeClock) -> Iterator[Cli]:
    sim = PlatformSimulator(clock=clock)
    client = httpx.Client(transport=sim.transport())
    yield Cli(clock, sim, {"client": client, "sleep": clock.sleep})
    client.close()


def make_video(path: Path, size: int = SIZE, seed: bytes = b"seed") -> Path:
    block = hashlib.sha256(seed).digest()
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "holiday.mp4")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_one_line_error(result: Result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --- help ------------------------------------------------------------------------------

COMMANDS = ["upload", "add", "list", "show", "resume", "verify", "cancel", "report", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(app: Cli, command: str) -> None:
    result = app.run(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert f"steadypost {command}" in result.stdout


def test_main_help_lists_every_exit_code(app: Cli) -> None:
    result = app.run("--help")
    assert result.exit_code == 0
    for code in ExitCode:
        assert f"{int(code):>3}  " in result.stdout
    assert "Examples:" in result.stdout


def test_exit_codes_are_as_documented() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 130]


# --- upload: one line per post and its exit code -----------------------------------------


def test_upload_confirmed(app: Cli, video: Path) -> None:
    result = app.upload(video)
    assert result.exit_code == ExitCode.OK, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith("confirmed")
    assert "holiday.mp4" in line
    [post] = app.posts()
    assert post.state is PostState.CONFIRMED
    assert post.post_id in line
    [info] = app.sim.uploads.values()
    assert info.completed
    assert info.metadata["filename"] == "holiday.mp4"
    assert info.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
    # stderr has the progress as plain lines (no terminal here), stdout only the result
    assert "100% sent" in result.stderr
    assert "\x1b[" not in result.output


def test_upload_json(app: Cli, video: Path, tmp_path: Path) -> None:
    other = make_video(tmp_path / "second.mp4", 70_000, b"other")
    result = app.upload(video, other, extra=("--json", "-m", "caption=Day one"))
    assert result.exit_code == ExitCode.OK, result.output
    records = json_lines(result.stdout)
    assert [r["file"] for r in records] == [str(video), str(other)]
    for record, size in zip(records, (SIZE, 70_000), strict=True):
        assert record["state"] == "confirmed"
        assert record["bytes"] == size
        assert record["upload_url"].startswith(ENDPOINT)
        assert record["post_id"]
        assert record["metadata"]["caption"] == "Day one"


def test_upload_waits_politely_and_shows_why(app: Cli, video: Path) -> None:
    now = app.clock.now()
    app.sim.faults.add(Outage(now, now + 90, retry_after=30))
    result = app.upload(video)
    assert result.exit_code == ExitCode.OK, result.output
    assert "server busy (503), retrying in 30 s" in result.stderr
    assert app.clock.sleeps.count(30) >= 3


def test_upload_unconfirmed_exits_3(app: Cli, video: Path) -> None:
    app.sim.faults.add(
        ProcessedButTimeout(on={"final_patch"}), Respond(status=503, methods={"HEAD"}, times=99)
    )
    app.options["retry"] = RetryPolicy(max_attempts=3, deadline_s=None)
    result = app.upload(video)
    assert result.exit_code == ExitCode.UNCONFIRMED, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith("unconfirmed")
    assert "checked in " in line
    assert "may already be live" in line


def test_upload_waiting_exits_4(app: Cli, video: Path) -> None:
    now = app.clock.now()
    app.sim.faults.add(Outage(now, now + 7200, retry_after=600))
    app.options["retry"] = RetryPolicy(deadline_s=1800)
    result = app.upload(video)
    assert result.exit_code == ExitCode.WAITING, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith("waiting")
    assert "503" in line
    assert "next try in " in line


def test_upload_failed_exits_5_and_the_worst_state_wins(app: Cli, video: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    other = make_video(tmp_path / "second.mp4", 70_000, b"other")
    app.sim.faults.add(Respond(status=401, methods={"POST"}, times=1))
    result = app.upload(video, other)
    assert result.exit_code == ExitCode.FAILED, result.output
    first, second = result.stdout.splitlines()
    assert first.startswith("failed")
    assert "401" in first
    assert second.startswith("confirmed")


def test_same_file_twice_is_posted_once(app: Cli, video: Path) -> None:
    result = app.upload(video, video)
    assert result.exit_code == 0
    assert "given twice" in result.stderr
    assert len(app.posts()) == 1


def test_ctrl_c_leaves_the_post_resumable_and_exits_130(app: Cli, video: Path) -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    app.sim.faults.add(ResetMidChunk(after_bytes=1000))  # the first PATCH (2nd chunk) breaks
    app.options["sleep"] = interrupted
    result = app.upload(video)
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    assert "interrupted" in result.stderr
    assert "steadypost resume" in result.stderr
    [post] = app.posts()
    assert post.state is PostState.WAITING
    assert post.offset == 64 * 1024
    assert post.upload_url
    assert result.stdout.startswith("waiting")

    app.options["sleep"] = app.clock.sleep
    resumed = app.run("resume", "--chunk-size", "64KiB")
    assert resumed.exit_code == ExitCode.OK, resumed.output
    assert "resuming at byte" not in resumed.stderr  # no wait before it: it simply goes on
    [done] = app.posts()
    assert done.state is PostState.CONFIRMED
    assert done.upload_url == post.upload_url
    assert len(app.sim.uploads) == 1


def test_ctrl_c_during_resume_exits_130(app: Cli, video: Path) -> None:
    assert app.run("add", str(video), "-e", ENDPOINT).exit_code == 0
    now = app.clock.now()
    app.sim.faults.add(Outage(now, now + 600, retry_after=60))

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    app.options["sleep"] = interrupted
    result = app.run("resume")
    assert result.exit_code == ExitCode.INTERRUPTED
    assert "interrupted" in result.stderr
    assert app.posts()[0].state is PostState.WAITING


# --- bad input: one clear line, its exit code, never a traceback ---------------------------


def test_missing_file(app: Cli, tmp_path: Path) -> None:
    result = app.upload(tmp_path / "nope.mp4")
    assert_one_line_error(result, ExitCode.USAGE, "nope.mp4", "does not exist")
    assert app.posts() == []


def test_directory(app: Cli, tmp_path: Path) -> None:
    assert_one_line_error(app.upload(tmp_path), ExitCode.USAGE, "is a directory")


def test_unreadable_file(app: Cli, video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video.chmod(0)
    if getattr(os, "geteuid", lambda: -1)() == 0:  # root may read anything: see it as a user
        access = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode, **kw: p != str(video) and access(p, mode, **kw)
        )
    assert_one_line_error(app.upload(video), ExitCode.USAGE, "not readable")
    assert app.posts() == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--endpoint", "ftp://example.com/files/"), "is not an http(s) URL"),
        (("--endpoint", "not a url"), "is not an http(s) URL"),
        (("--endpoint", "http://host:99999/"), "is not a valid URL"),
        (("--endpoint", ENDPOINT, "--chunk-size", "5XB"), "'5XB' is not a size"),
        (("--endpoint", ENDPOINT, "--chunk-size", "0"), "at least 1 byte"),
        (("--endpoint", ENDPOINT, "--metadata", "novalue"), "key=value"),
        (("--endpoint", ENDPOINT, "--header", "Authorization Bearer abc"), "'Name: value'"),
    ],
)
def test_bad_options(app: Cli, video: Path, args: tuple[str, ...], needle: str) -> None:
    result = app.run("upload", str(video), *args)
    assert_one_line_error(result, ExitCode.USAGE, needle)
    assert "Bearer abc" not in result.output  # a malformed header's value is never echoed


def test_no_endpoint(app: Cli, video: Path) -> None:
    assert_one_line_error(app.run("upload", str(video)), ExitCode.USAGE, "no endpoint")


# --- add, list, show, resume ----------------------------------------------------------------


def test_add_then_list_show_and_resume(app: Cli, video: Path) -> None:
    added = app.run("add", str(video), "-e", ENDPOINT, "-H", "X-Channel: travel", "--json")
    assert added.exit_code == 0, added.output
    [record] = json_lines(added.stdout)
    assert record["state"] == "queued"
    assert "--header values are not saved" in added.stderr
    assert app.sim.requests == []  # nothing sent

    listed = app.run("list")
    assert listed.exit_code == 0
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["POST", "ID", "STATE"]
    assert record["post_id"] in row
    assert "queued" in row

    resumed = app.run("resume", "--json")
    assert resumed.exit_code == ExitCode.OK, resumed.output
    assert json_lines(resumed.stdout)[0]["state"] == "confirmed"

    assert json_lines(app.run("list", "--state", "confirmed", "--json").stdout)[0]["post_id"] == (
        record["post_id"]
    )
    assert app.run("list", "--state", "failed").stdout == ""

    shown = app.run("show", record["post_id"][:12])  # a unique beginning is enough
    assert shown.exit_code == 0, shown.output
    assert "confirmed" in shown.stdout
    assert "timeline:" in shown.stdout
    assert "queued -> uploading" in shown.stdout
    assert "POST https://platform.test" in shown.stdout

    shown_json = json.loads(app.run("show", record["post_id"], "--json").stdout)
    assert shown_json["post_id"] == record["post_id"]
    assert shown_json["events"][0]["kind"] == "state"


def test_show_unknown_post(app: Cli) -> None:
    assert_one_line_error(app.run("show", "01NOPE"), ExitCode.USAGE, "no post '01NOPE'")


def test_list_on_an_empty_journal(app: Cli) -> None:
    result = app.run("list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no posts" in result.stderr
    assert app.run("list", "--json").stdout == ""


def test_resume_leaves_posts_whose_wait_is_not_over(app: Cli, video: Path) -> None:
    now = app.clock.now()
    app.sim.faults.add(Outage(now, now + 7200, retry_after=600))
    app.options["retry"] = RetryPolicy(deadline_s=1200)
    assert app.upload(video).exit_code == ExitCode.WAITING
    requests = len(app.sim.requests)
    result = app.run("resume", "--no-wait")  # riding it out instead: tests/test_cli_rideout.py
    assert result.exit_code == ExitCode.WAITING
    assert "resume --all" in result.stderr
    assert len(app.sim.requests) == requests  # the server asked for time: it gets it
    app.clock.advance(7200)
    assert app.run("resume").exit_code == ExitCode.OK


def test_resume_nothing(app: Cli) -> None:
    result = app.run("resume")
    assert result.exit_code == 0
    assert "nothing to resume" in result.stderr


# --- verify ------------------------------------------------------------------------------------


def unconfirmed_post(app: Cli, video: Path) -> str:
    app.sim.faults.add(
        ProcessedButTimeout(on={"final_patch"}), Respond(status=503, methods={"HEAD"}, times=99)
    )
    app.options["retry"] = RetryPolicy(max_attempts=3, deadline_s=None)
    result = app.upload(video, extra=("--json",))
    assert result.exit_code == ExitCode.UNCONFIRMED
    app.sim.faults.clear()
    return str(json_lines(result.stdout)[0]["post_id"])


def test_verify_when_nothing_is_due(app: Cli, video: Path) -> None:
    assert app.run("verify").stderr.strip() == "no unconfirmed posts"
    unconfirmed_post(app, video)
    result = app.run("verify")
    assert result.exit_code == ExitCode.UNCONFIRMED
    assert "nothing to verify now" in result.stderr
    assert "next check is at" in result.stderr


def test_verify_confirms_when_due(app: Cli, video: Path) -> None:
    post_id = unconfirmed_post(app, video)
    app.clock.advance(30 * 60)
    result = app.run("verify", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    [record] = json_lines(result.stdout)
    assert record == {**record, "post_id": post_id, "state": "confirmed"}
    assert len(app.sim.uploads) == 1


def test_verify_all_checks_now_and_not_processed_is_queued_again(app: Cli, video: Path) -> None:
    unconfirmed_post(app, video)
    app.sim.faults.add(Respond(status=404, methods={"HEAD"}, times=1))  # the server lost it
    result = app.run("verify", "--all")
    assert result.exit_code == ExitCode.WAITING, result.output
    assert result.stdout.startswith("queued")


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_deletes_the_server_upload(app: Cli, video: Path) -> None:
    app.sim.faults.add(Respond(status=503, methods={"PATCH"}, times=99))
    app.options["retry"] = RetryPolicy(max_attempts=2, deadline_s=None)
    uploaded = app.upload(video, extra=("--json", "--no-wait"))
    assert uploaded.exit_code == ExitCode.WAITING
    [record] = json_lines(uploaded.stdout)
    app.sim.faults.clear()
    result = app.run("cancel", record["post_id"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("cancelled")
    [info] = app.sim.uploads.values()
    assert info.gone is not None
    assert any(r.method == "DELETE" for r in app.sim.requests)
    again = app.run("cancel", record["post_id"])
    assert again.exit_code == 0
    assert "already cancelled" in again.stderr


def test_cancel_when_the_server_cannot_delete_says_so(app: Cli, video: Path) -> None:
    app.sim.faults.add(Respond(status=503, methods={"PATCH"}, times=99))
    app.options["retry"] = RetryPolicy(max_attempts=2, deadline_s=None)
    [record] = json_lines(app.upload(video, extra=("--json", "--no-wait")).stdout)
    app.sim.faults.add(Respond(status=403, methods={"DELETE"}, times=1))
    result = app.run("cancel", record["post_id"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("cancelled")
    assert "delete failed" in result.stderr
    assert "until it expires" in result.stderr


def test_cancel_a_confirmed_post_is_refused(app: Cli, video: Path) -> None:
    assert app.upload(video).exit_code == 0
    [post] = app.posts()
    result = app.run("cancel", post.post_id)
    assert_one_line_error(result, ExitCode.ERROR, "is confirmed")
    assert_one_line_error(app.run("cancel", "01NOPE"), ExitCode.USAGE, "no post")


# --- report ------------------------------------------------------------------------------------


def test_report_has_the_evidence_of_affected_posts_only(app: Cli, video: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    assert app.upload(make_video(tmp_path / "calm.mp4", 1000)).exit_code == 0  # no trouble
    now = app.clock.now()
    app.sim.faults.add(Outage(now, now + 60, retry_after=30))
    assert app.upload(video).exit_code == 0
    result = app.run("report")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # not a terminal: JSON
    [post] = document["posts"]
    assert post["file"] == video.name  # a file name: no folder leaves the machine
    assert document["summary"]["posts_affected"] == 1
    assert str(video.parent) not in result.stdout
    assert post["state"] == "confirmed"
    assert post["server_answers"]["503"] >= 2
    assert post["waits"] >= 2
    assert post["waited_s"] >= 60
    assert post["confirmed_at"]
    assert any(e["kind"] == "request" and e["status"] == 503 for e in post["events"])

    out = tmp_path / "outage.csv"
    written = app.run("report", "--format", "csv", "-o", str(out))
    assert written.exit_code == 0
    assert written.stdout == ""
    assert "1 post(s)" in written.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("post_id,file,final_state,at,kind")
    assert any(",request,OPTIONS," in line and ",503," in line for line in lines)

    later = app.run("report", "--since", "2099-01-01")
    assert json.loads(later.stdout)["posts"] == []
    assert json.loads(app.run("report", "--since", "1d").stdout)["posts"]
    assert_one_line_error(app.run("report", "--since", "last tuesday"), ExitCode.USAGE,
                          "is not a date")  # fmt: skip


# --- configuration: profile, environment, flags; tokens stay secret ---------------------------


def write_config(text: str) -> Path:
    path = config_dir() / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_profile_gives_endpoint_and_token_which_are_never_shown(
    app: Cli, video: Path, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, require_authorization=f"Bearer {TOKEN}")
    app.sim, app.options["client"] = sim, httpx.Client(transport=sim.transport())
    write_config(f"""
default_profile = "travel"
[profiles.travel]
endpoint = "{ENDPOINT}"
token = "{TOKEN}"
chunk_size = "64KiB"
metadata = {{ playlist = "summer" }}
""")
    result = app.run("upload", str(video), "--json", "--debug")
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["metadata"]["playlist"] == "summer"
    assert TOKEN not in result.output  # not even in --debug logs
    assert sum(1 for r in sim.requests if r.method == "PATCH") == 3  # 64 KiB chunks
    assert TOKEN.encode() not in default_journal_path().read_bytes()
    post_id = json_lines(result.stdout)[0]["post_id"]
    for command in (("list", "--json"), ("report",), ("show", post_id)):
        assert TOKEN not in app.run(*command).output


def test_a_profile_token_does_not_follow_endpoint_to_another_site(app: Cli, video: Path) -> None:
    write_config(f'[profiles.default]\nendpoint = "{ENDPOINT}"\ntoken = "{TOKEN}"\n')
    result = app.run("upload", str(video), "--endpoint", "https://other.test/files/")
    assert result.exit_code == 0, result.output
    assert "is not sent to https://other.test:443" in result.stderr
    assert TOKEN not in result.output
    assert app.sim.requests
    for request in app.sim.requests:
        assert request.origin.endswith("other.test")
        assert "authorization" not in {name.lower() for name in request.headers}


def test_environment_overrides_profile_and_flags_override_both(
    app: Cli, video: Path, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock, require_authorization="Bearer from-env")
    app.sim, app.options["client"] = sim, httpx.Client(transport=sim.transport())
    write_config('[profiles.default]\nendpoint = "https://elsewhere.test/files/"\ntoken = "old"\n')
    env = {"STEADYPOST_TOKEN": "from-env", "STEADYPOST_ENDPOINT": ENDPOINT}
    assert app.run("upload", str(video), env=env).exit_code == 0
    # a flag wins over the environment: this header replaces the token
    flagged = app.run("upload", str(video), "--new", "-H", "Authorization: Bearer wrong",
                      env=env)
    assert flagged.exit_code == ExitCode.FAILED
    assert "401" in flagged.stdout


def test_token_from_a_variable_named_in_the_profile(app: Cli, video: Path,
                                                    clock: FakeClock) -> None:  # fmt: skip
    sim = PlatformSimulator(clock=clock, require_authorization="Bearer via-var")
    app.sim, app.options["client"] = sim, httpx.Client(transport=sim.transport())
    write_config(f'[profiles.p]\nendpoint = "{ENDPOINT}"\ntoken_env = "MY_UPLOAD_TOKEN"\n')
    missing = app.run("--profile", "p", "upload", str(video))
    assert_one_line_error(missing, ExitCode.USAGE, "$MY_UPLOAD_TOKEN", "not set")
    ok = app.run("upload", str(video), "--profile", "p", env={"MY_UPLOAD_TOKEN": "via-var"})
    assert ok.exit_code == 0, ok.output


def test_credentials_never_reach_another_site(app: Cli, video: Path, clock: FakeClock) -> None:
    other = "https://other.test/files/"
    assert app.run("add", str(video), "-e", other).exit_code == 0
    write_config(f'[profiles.default]\nendpoint = "{ENDPOINT}"\ntoken = "{TOKEN}"\n')
    result = app.run("resume")
    assert result.exit_code == ExitCode.WAITING  # left as it was: still queued
    assert "skipped so your credentials stay with their site" in result.stderr
    assert app.sim.requests == []


def test_verify_does_not_send_credentials_to_another_site(app: Cli, video: Path) -> None:
    unconfirmed_post(app, video)  # a post on https://platform.test
    write_config(f'[profiles.default]\nendpoint = "https://other.test/files/"\ntoken = "{TOKEN}"\n')
    requests = len(app.sim.requests)
    result = app.run("verify", "--all")
    assert_one_line_error(result, ExitCode.ERROR, "must not be sent there")
    assert len(app.sim.requests) == requests


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("[profiles.a\n", "is not valid TOML"),
        ('[profiles.a]\nendpont = "x"\n', "unknown key 'endpont'"),
        ('[profiles.a]\nchunk_size = "5XB"\n', "'5XB' is not a size"),
        ('[profiles.a]\nendpoint = "ftp://x/"\n', "not an http(s) URL"),
        ('default_profile = "b"\n[profiles.a]\n', "no profile 'b'"),
    ],
)
def test_bad_config(app: Cli, video: Path, config: str, needle: str) -> None:
    write_config(config)
    result = app.run("upload", str(video), "-e", ENDPOINT)
    assert_one_line_error(result, ExitCode.USAGE, needle)


def test_unknown_profile_and_bad_env(app: Cli, video: Path) -> None:
    result = app.run("--profile", "nope", "upload", str(video), "-e", ENDPOINT)
    assert_one_line_error(result, ExitCode.USAGE, "no profile 'nope'")
    bad = app.run("upload", str(video), "-e", ENDPOINT, env={"STEADYPOST_CHUNK_SIZE": "lots"})
    assert_one_line_error(bad, ExitCode.USAGE, "$STEADYPOST_CHUNK_SIZE", "'lots' is not a size")


def test_a_token_in_a_world_readable_config_is_warned_about(app: Cli, video: Path) -> None:
    write_config(f'[profiles.default]\nendpoint = "{ENDPOINT}"\ntoken = "{TOKEN}"\n').chmod(0o644)
    result = app.run("add", str(video))
    assert result.exit_code == 0
    assert "chmod 600" in result.stderr
    assert TOKEN not in result.output


# --- the demo, and the real tus server --------------------------------------------------------


def test_demo(app: Cli) -> None:
    result = CliRunner().invoke(cli, ["demo", "--pace", "0"])
    assert result.exit_code == 0, result.output
    assert "resuming at byte" in result.stderr
    assert "uploads on the platform: 1 (posted exactly once)" in result.stderr
    assert result.stdout.startswith("unconfirmed")
    assert "\nconfirmed" in result.stdout
    assert not default_journal_path().exists()  # a temporary journal, never the user's


class BreakFirstPatch(httpx.HTTPTransport):
    """Real HTTP, except that the first PATCH loses its connection."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and not self.broken:
            self.broken = True
            raise httpx.ReadError("connection reset (injected)", request=request)
        return super().handle_request(request)


def test_resume_and_cancel_against_the_reference_tus_server(tus_server: TusServer,
                                                            tmp_path: Path) -> None:  # fmt: skip
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    first = make_video(tmp_path / "first.mp4", 300_000, b"1")
    second = make_video(tmp_path / "second.mp4", 300_000, b"2")
    runner = CliRunner()
    transport = BreakFirstPatch()
    with httpx.Client(transport=transport) as client:
        broken = Runtime(uploader_options={"client": client, "sleep": interrupted})
        for video in (first, second):
            transport.broken = False
            args = ["upload", str(video), "-e", tus_server.endpoint, "--chunk-size", "100KB"]
            result = runner.invoke(cli, args, obj=broken)
            assert result.exit_code == ExitCode.INTERRUPTED, result.output
    posts = json_lines(runner.invoke(cli, ["list", "--json"]).stdout)
    assert [p["state"] for p in posts] == ["waiting", "waiting"]
    # The creation request carried the first bytes (creation-with-upload, capped).
    first_bytes = min(100_000, DEFAULT_CREATION_WITH_UPLOAD_MAX)
    assert [p["offset"] for p in posts] == [first_bytes, first_bytes]

    resumed = runner.invoke(cli, ["resume", posts[0]["post_id"], "--chunk-size", "100KB"])
    assert resumed.exit_code == 0, resumed.output  # real HTTP from here on
    assert resumed.stdout.startswith("confirmed")
    cancelled = runner.invoke(cli, ["cancel", posts[1]["post_id"]])
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.startswith("cancelled")
    [kept] = tus_server.uploads()  # the cancelled upload was deleted on the server
    assert kept.completed
    assert kept.metadata["filename"] == "first.mp4"
    assert tus_server.sha256(kept.id) == hashlib.sha256(first.read_bytes()).hexdigest()


# --- errors: one line, or the traceback with --debug --------------------------------------------


def test_a_broken_journal_is_one_line_unless_debug(app: Cli) -> None:
    journal = default_journal_path()
    journal.parent.mkdir(parents=True)
    journal.write_bytes(b"this is not a database" * 100)
    result = app.run("list")
    assert_one_line_error(result, ExitCode.ERROR, "corrupt")
    assert len(result.stderr.strip().splitlines()) == 1
    debug = app.run("list", "--debug")
    assert debug.exit_code == ExitCode.ERROR
    assert "Traceback" in debug.stderr
