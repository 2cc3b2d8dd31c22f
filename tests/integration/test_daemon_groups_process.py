"""``steadypost daemon --watch DIR --to tiktok,youtube,instagram``: the real daemon, the real clock.

Each platform is its own simulator server on 127.0.0.1 with its own token in
its own profile. A video dropped into the folder becomes one post per
platform, grouped; a sidecar ``"platforms": [...]`` picks the destinations of
its own video. TikTok is down at first: the other platforms' posts are
confirmed meanwhile, and TikTok's once it is back, each exactly once.
"""

from __future__ import annotations

import hashlib
import random
import signal
from pathlib import Path

from test_cli_groups_process import TOKENS, env_for, run, servers, write_config  # noqa: F401 (fixture)
from test_daemon_process import DaemonProcess, wait_until

from steadypost import Journal, Post, PostState
from steadypost.testing import Outage, SimulatorServer


def _posts(home: Path) -> list[Post]:
    path = home / "journal.sqlite3"
    if not path.exists():
        return []
    with Journal(path) as journal:
        return journal.list()


def _states(home: Path) -> dict[tuple[str, str], str]:
    return {(Path(p.path).name, p.platform): p.state.value for p in _posts(home)}


def test_a_watched_video_goes_to_each_platform_once_and_a_sidecar_picks_its_own(
    servers: dict[str, SimulatorServer], tmp_path: Path  # noqa: F811 (the fixture)
) -> None:
    write_config(tmp_path / "config", servers)
    home = tmp_path / "home"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    tiktok = servers["tiktok"].sim
    tiktok.faults.add(Outage(0, 1e12, retry_after=1))
    daemon = DaemonProcess(tmp_path, "--watch", inbox, "--settle", "0.3",
                           "--to", "tiktok,youtube,instagram", env=env_for(tmp_path))  # fmt: skip
    try:
        daemon.wait_log("watching")
        (inbox / "solo.mp4.json").write_text('{"platforms": ["youtube"], "title": "Solo"}')
        solo = inbox / "solo.mp4"
        solo.write_bytes(random.Random(1).randbytes(300_000))
        clip = inbox / "clip.mp4"
        clip.write_bytes(random.Random(2).randbytes(600_000))
        sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (clip, solo)}

        want_first = {("clip.mp4", "youtube"): "confirmed", ("clip.mp4", "instagram"): "confirmed",
                      ("solo.mp4", "youtube"): "confirmed"}  # fmt: skip
        wait_until(lambda: {k: v for k, v in _states(home).items() if k[1] != "tiktok"}
                   == want_first, 60, "youtube and instagram confirmed")  # fmt: skip
        # One platform's outage delays none of the others, and its post waits.
        assert _states(home)[("clip.mp4", "tiktok")] in ("waiting", "uploading", "queued")
        assert not tiktok.tiktok.published()

        tiktok.faults.clear()
        wait_until(lambda: _states(home).get(("clip.mp4", "tiktok")) == "confirmed", 90,
                   "the TikTok post confirmed once TikTok is back")  # fmt: skip
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0, daemon.log
    finally:
        daemon.kill()

    posts = _posts(home)
    assert len(posts) == 4
    assert all(p.state is PostState.CONFIRMED for p in posts)
    groups = {p.group for p in posts if Path(p.path).name == "clip.mp4"}
    assert len(groups) == 1
    assert None not in groups
    [solo_post] = [p for p in posts if Path(p.path).name == "solo.mp4"]
    assert solo_post.group is None
    assert solo_post.metadata.get("title") == "Solo"
    assert sorted(v.sha256 for v in servers["youtube"].sim.youtube.videos()) == sorted(sha.values())
    assert [r.sha256 for r in servers["instagram"].sim.instagram.published()] == [sha["clip.mp4"]]
    assert [r.sha256 for r in tiktok.tiktok.published()] == [sha["clip.mp4"]]
    for name, server in servers.items():  # each site saw its own token, and only its own
        seen = {r.headers.get("authorization", "") for r in server.sim.requests} - {""}
        assert all(TOKENS[name] in value for value in seen), (name, seen)
    assert "clip.mp4" in daemon.log
    assert "to tiktok" in daemon.log

    # Restarted on the same folder, nothing is posted again.
    counts = {name: len(s.sim.requests) for name, s in servers.items()}
    again = run(tmp_path, "daemon", "--once", "--watch", str(inbox), "--settle", "0.3",
                "--to", "tiktok,youtube,instagram")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(_posts(home)) == 4
    assert {name: len(s.sim.requests) for name, s in servers.items()} == counts


def test_a_sidecar_naming_an_unknown_destination_waits_and_says_why(
    servers: dict[str, SimulatorServer], tmp_path: Path  # noqa: F811 (the fixture)
) -> None:
    write_config(tmp_path / "config", servers)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "clip.json").write_text('{"platforms": ["youtube", "myspace"]}')
    (inbox / "clip.mp4").write_bytes(b"v" * 5000)
    proc = run(tmp_path, "daemon", "--once", "--watch", str(inbox), "--settle", "0.2",
               "--to", "youtube")  # fmt: skip
    assert "myspace" in proc.stderr, proc.stderr
    assert "waits until it is fixed" in proc.stderr
    assert _posts(tmp_path / "home") == []
    assert not any(len(s.sim.requests) for s in servers.values())
