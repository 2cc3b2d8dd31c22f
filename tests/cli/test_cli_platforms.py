"""``steadypost platforms`` and ``--platform`` on ``upload``/``add``, against the in-process
TikTok and Vimeo simulators (CliRunner with ``obj=Runtime(...)``, a fake clock, no sockets).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from test_cli import Cli

from steadypost import PostState
from steadypost.cli import ExitCode
from steadypost.paths import config_dir, default_journal_path
from steadypost.platforms import available
from steadypost.platforms.tiktok import TIKTOK_API
from steadypost.platforms.vimeo import VIMEO_API
from steadypost.testing import FakeClock, PlatformSimulator, TikTokConfig, VimeoConfig

TIKTOK_TOKEN = "act.cli-test-token-0123456789"
VIMEO_TOKEN = "vimeo-cli-test-token-0123456789"
VIMEO_UPLOADS = "https://files.vimeo.test"
SIZE = 300_000


@pytest.fixture
def app(clock: FakeClock) -> Iterator[Cli]:
    sim = PlatformSimulator(
        clock=clock,
        tiktok=TikTokConfig(tokens=frozenset({TIKTOK_TOKEN})),
        vimeo=VimeoConfig(require_authorization=f"Bearer {VIMEO_TOKEN}",
                          upload_origin=VIMEO_UPLOADS),
    )  # fmt: skip
    client = httpx.Client(transport=sim.transport())
    yield Cli(clock, sim, {"client": client, "sleep": clock.sleep})
    client.close()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(random.Random(11).randbytes(SIZE))
    return path


def write_config(text: str) -> None:
    path = config_dir() / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def usage_error(result: Result, *needles: str) -> None:
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --- steadypost platforms -------------------------------------------------------------------


def test_platforms_lists_every_platform_with_what_it_supports(app: Cli) -> None:
    result = app.run("platforms")
    assert result.exit_code == ExitCode.OK, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["PLATFORM", "TOKEN", "DEFAULT", "ENDPOINT"]
    rows = {line.split()[0]: line for line in lines[1 : 1 + len(available())]}
    assert list(rows) == [info.name for info in available()]
    assert TIKTOK_API in rows["tiktok"]
    assert "privacy_level" in rows["tiktok"]
    assert rows["tiktok"].split()[1] == "yes"
    assert rows["tus"].split()[1] == "no"
    assert VIMEO_API in rows["vimeo"]
    for info in available():
        assert info.verification in result.stdout
        assert info.sources in result.stdout


def test_platforms_json_is_one_object_per_platform(app: Cli) -> None:
    result = app.run("platforms", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in records] == [info.name for info in available()]
    tiktok = next(r for r in records if r["name"] == "tiktok")
    assert tiktok["needs_token"] is True
    assert tiktok["default_endpoint"] == TIKTOK_API
    assert "privacy_level" in tiktok["options"]
    assert "mode" in tiktok["options"]
    assert {"title", "bytes", "publish", "verification", "sources"} <= set(tiktok)


# --- upload / add --platform ------------------------------------------------------------------


def test_upload_to_tiktok_uses_its_api_and_journals_the_platform(app: Cli, video: Path) -> None:
    result = app.run("upload", str(video), "--platform", "tiktok", "-m", "title=Sunset",
                     "--platform-option", "privacy_level=SELF_ONLY",
                     env={"STEADYPOST_TOKEN": TIKTOK_TOKEN})  # fmt: skip
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout.startswith("confirmed")
    [post] = app.posts()
    assert post.state is PostState.CONFIRMED
    assert post.platform == "tiktok"
    assert post.endpoint == TIKTOK_API  # no --endpoint: the platform's own API
    assert post.extra["platform"]["privacy_level"] == "SELF_ONLY"
    [published] = app.sim.tiktok.published()
    assert published.status == "PUBLISH_COMPLETE"
    assert dict(published.post_info) == {"privacy_level": "SELF_ONLY", "title": "Sunset"}


def test_upload_to_vimeo_ends_as_the_simulator_leads(app: Cli, video: Path) -> None:
    env = {"STEADYPOST_TOKEN": VIMEO_TOKEN}
    result = app.run("upload", str(video), "--platform", "vimeo", "-m", "title=Talk", env=env)
    assert result.exit_code in (ExitCode.OK, ExitCode.UNCONFIRMED), result.output
    [post] = app.posts()
    assert post.platform == "vimeo"
    assert post.endpoint == VIMEO_API
    if post.state is PostState.UNCONFIRMED:  # transcoding is checked later
        assert app.run("verify", "--all", env=env).exit_code == ExitCode.OK
        [post] = app.posts()
    assert post.state is PostState.CONFIRMED
    [info] = app.sim.vimeo.videos()
    assert (info.name, info.transcode_status) == ("Talk", "complete")


def test_add_keeps_the_platform_for_resume(app: Cli, video: Path) -> None:
    env = {"STEADYPOST_TOKEN": TIKTOK_TOKEN, "STEADYPOST_PLATFORM": "tiktok"}
    added = app.run("add", str(video), "--platform-option", "mode=inbox", env=env)
    assert added.exit_code == ExitCode.OK, added.output
    [post] = app.posts()
    assert (post.platform, post.state) == ("tiktok", PostState.QUEUED)
    assert post.extra["platform"]["mode"] == "inbox"
    resumed = app.run("resume", env={"STEADYPOST_TOKEN": TIKTOK_TOKEN})
    assert resumed.exit_code == ExitCode.OK, resumed.output
    [post] = app.posts()
    assert post.state is PostState.CONFIRMED
    [published] = app.sim.tiktok.published()
    assert published.status == "SEND_TO_USER_INBOX"


def test_a_profile_with_platform_tiktok_is_used(app: Cli, video: Path) -> None:
    write_config("""
default_profile = "tt"
[profiles.tt]
platform = "tiktok"
token_env = "TT_TOKEN"
[profiles.tt.platform_options]
privacy_level = "SELF_ONLY"
account = "travel"
""")
    result = app.run("upload", str(video), env={"TT_TOKEN": TIKTOK_TOKEN})
    assert result.exit_code == ExitCode.OK, result.output
    [post] = app.posts()
    assert (post.platform, post.endpoint, post.state) == ("tiktok", TIKTOK_API,
                                                          PostState.CONFIRMED)  # fmt: skip
    assert post.extra["platform"]["account"] == "travel"
    assert TIKTOK_TOKEN not in default_journal_path().read_bytes().decode("latin-1")


# --- usage errors (exit 2) --------------------------------------------------------------------


def test_an_unknown_platform_is_a_usage_error_naming_the_known_ones(app: Cli, video: Path) -> None:
    known = [info.name for info in available()]
    usage_error(app.run("upload", str(video), "--platform", "myspace"), "myspace", *known)
    usage_error(app.run("add", str(video), env={"STEADYPOST_PLATFORM": "myspace"}),
                "STEADYPOST_PLATFORM", "myspace", *known)  # fmt: skip
    write_config('[profiles.old]\nplatform = "myspace"\n')
    usage_error(app.run("--profile", "old", "upload", str(video)), "myspace", *known)
    assert app.posts() == []


def test_bad_platform_options_are_usage_errors(app: Cli, video: Path) -> None:
    env = {"STEADYPOST_TOKEN": TIKTOK_TOKEN}
    usage_error(app.run("upload", str(video), "-p", "tiktok", "--platform-option", "colour=red",
                        env=env), "no option 'colour'", "privacy_level")  # fmt: skip
    usage_error(app.run("upload", str(video), "-p", "tiktok", "--platform-option", "mode=sideways",
                        env=env), "mode")  # fmt: skip
    usage_error(app.run("upload", str(video), "-p", "tiktok", "--platform-option", "nokey",
                        env=env), "key=value")  # fmt: skip
    usage_error(
        app.run("upload", str(video), "-p", "post-api", "-e", "https://x.test/files/"),
        "publish_url",
    )
    usage_error(app.run("upload", str(video), "--platform", "tiktok"), "needs an access token")
    assert app.posts() == []
    assert app.sim.requests == []


def test_the_daemon_posts_watched_files_with_the_profiles_platform(
    app: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    clip = folder / "clip.mp4"
    clip.write_bytes(random.Random(5).randbytes(SIZE))
    result = app.run(
        "daemon", "--once", "--watch", str(folder), "--settle", "0",
        env={"STEADYPOST_PLATFORM": "tiktok", "STEADYPOST_TOKEN": TIKTOK_TOKEN},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [post] = app.posts()
    assert (post.platform, post.state) == ("tiktok", PostState.CONFIRMED)
    assert post.endpoint == TIKTOK_API  # the platform's own API, not a tus server
    [published] = app.sim.tiktok.published()
    assert published.sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()
