"""``--to`` in process, and ``resume`` giving each post the token of its site's profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import Cli, make_video
from test_cli import app as app  # the fixtures, shared

from steadypost.cli import ExitCode
from steadypost.paths import config_dir
from steadypost.platforms.youtube import YouTubePlatform

YT = "https://youtube.test"


def profiles(text: str) -> None:
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(text)
    (folder / "config.toml").chmod(0o600)


def test_resume_leaves_a_post_whose_site_has_no_token_waiting_not_failed(
    app: Cli, tmp_path: Path
) -> None:
    from steadypost import Journal

    video = make_video(tmp_path / "clip.mp4")
    with Journal(clock=app.clock.now) as journal:
        from steadypost import Uploader

        with Uploader(journal=journal, clock=app.clock.now) as up:
            post = up.add(video, YT, platform=YouTubePlatform(), group="g-test")
    result = app.run("resume", "--no-wait")
    assert result.exit_code == ExitCode.WAITING, result.output
    assert "needs an access token and no profile has one" in result.stderr
    assert "steadypost login --profile youtube" in result.stderr
    [left] = app.posts()
    assert (left.post_id, left.state.value) == (post.post_id, "queued")
    assert app.sim.requests == []  # nothing was sent without a token


def test_resume_sends_each_post_the_token_of_its_sites_profile(
    app: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YT_TOKEN", "yt-secret")
    profiles(f'[profiles.yt]\nplatform = "youtube"\nendpoint = "{YT}"\ntoken_env = "YT_TOKEN"\n'
             '[profiles.yt.platform_options]\nchunk_size = "262144"\n')  # fmt: skip
    video = make_video(tmp_path / "clip.mp4")
    added = app.run("add", str(video), "--to", "yt", "--json")
    assert added.exit_code == 0, added.output
    result = app.run("resume", "--json")
    assert result.exit_code == 0, result.output
    auth = {r.headers.get("authorization") for r in app.sim.requests} - {None}
    assert auth == {"Bearer yt-secret"}
    assert [p.state.value for p in app.posts()] == ["confirmed"]


def test_list_filters_by_group_and_names_the_platform(app: Cli, tmp_path: Path) -> None:
    from steadypost import Journal, Uploader

    one, two = make_video(tmp_path / "one.mp4"), make_video(tmp_path / "two.mp4", seed=b"2")
    with Journal(clock=app.clock.now) as journal, Uploader(journal=journal,
                                                          clock=app.clock.now) as up:  # fmt: skip
        up.add(one, YT, platform=YouTubePlatform(), group="g-aaa")
        up.add(one, "https://tiktok.test/", group="g-aaa")
        up.add(two, YT, platform=YouTubePlatform())
    listed = app.run("list", "--group", "g-a")
    assert listed.exit_code == 0
    assert "one.mp4 (youtube)" in listed.stdout
    assert "one.mp4 (tus)" in listed.stdout
    assert "two.mp4" not in listed.stdout
    shown = app.run("show", app.posts()[0].post_id)
    assert "group  g-aaa" in shown.stdout
