"""``steadypost upload clip.mp4 --to tiktok,youtube,instagram``: the real CLI, the real clock.

Each platform is its own simulator server on 127.0.0.1 (its own site, so its
own circuit breaker), each profile in config.toml has its own token, and
TikTok is down (503) the whole time the first command runs.
"""

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
    InstagramConfig,
    Outage,
    PlatformSimulator,
    SimulatorServer,
    TikTokConfig,
    YouTubeConfig,
)

SCRIPT = Path(sys.executable).with_name("steadypost")
TOKENS = {"tiktok": "act.tiktok-cli", "youtube": "ya29.youtube-cli", "instagram": "IGQ-cli"}
NAMES = ("tiktok", "youtube", "instagram")


@pytest.fixture
def servers() -> Iterator[dict[str, SimulatorServer]]:
    sims = {
        "tiktok": PlatformSimulator(tiktok=TikTokConfig(tokens=frozenset({TOKENS["tiktok"]}))),
        "youtube": PlatformSimulator(youtube=YouTubeConfig(
            tokens=frozenset({TOKENS["youtube"]}))),
        "instagram": PlatformSimulator(instagram=InstagramConfig(
            tokens=frozenset({TOKENS["instagram"]}), processing_s=0)),
    }  # fmt: skip
    running = {name: SimulatorServer(sim) for name, sim in sims.items()}
    for server in running.values():
        server.__enter__()
    try:
        yield running
    finally:
        for server in running.values():
            server.__exit__(None, None, None)


def write_config(folder: Path, servers: dict[str, SimulatorServer]) -> None:
    folder.mkdir(mode=0o700)
    options = {"youtube": 'chunk_size = "262144"\n',
               "instagram": 'ig_user_id = "17841400000000003"\npoll_s = "0.2"\n',
               "tiktok": 'chunk_size = "262144"\n'}  # fmt: skip
    text = "".join(
        f'[profiles.{name}]\nplatform = "{name}"\nendpoint = "{servers[name].url}"\n'
        f'token_env = "{name.upper()}_TOKEN"\n[profiles.{name}.platform_options]\n'
        f"{options[name]}\n"
        for name in NAMES
    )
    path = folder / "config.toml"
    path.write_text(text)
    path.chmod(0o600)


def env_for(tmp_path: Path) -> dict[str, str]:
    """A user's environment: each profile's token in its variable, home and config in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYPOST_")}
    env.update({f"{name.upper()}_TOKEN": token for name, token in TOKENS.items()})
    env.update(STEADYPOST_HOME=str(tmp_path / "home"), STEADYPOST_CONFIG_DIR=str(
        tmp_path / "config"), COLUMNS="160", NO_COLOR="1")  # fmt: skip
    return env


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          env=env_for(tmp_path), timeout=120)  # fmt: skip


def records(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_one_video_to_three_platforms_with_one_down(
    servers: dict[str, SimulatorServer], tmp_path: Path
) -> None:
    write_config(tmp_path / "config", servers)
    video = tmp_path / "clip.mp4"
    video.write_bytes(random.Random(17).randbytes(600_000))
    sha = hashlib.sha256(video.read_bytes()).hexdigest()
    tiktok = servers["tiktok"].sim
    tiktok.faults.add(Outage(0, 1e12, retry_after=1))

    first = run(tmp_path, "upload", str(video), "--to", "tiktok,youtube,instagram",
                "-m", "title=Sunset", "-m", "caption=Sunset", "--no-wait", "--json")  # fmt: skip
    assert first.returncode == 4, first.stderr  # one post left waiting for its platform
    posts = {str(r["platform"]): r for r in records(first)}
    assert {p: r["state"] for p, r in posts.items()} == {
        "tiktok": "waiting", "youtube": "confirmed", "instagram": "confirmed"}
    [group] = {r["group"] for r in posts.values()}
    assert isinstance(group, str)
    assert [v.sha256 for v in servers["youtube"].sim.youtube.videos()] == [sha]
    assert [r.sha256 for r in servers["instagram"].sim.instagram.published()] == [sha]
    for name, server in servers.items():  # each site saw its own token, and only its own
        seen = {r.headers.get("authorization", "") for r in server.sim.requests} - {""}
        assert all(TOKENS[name] in value for value in seen), (name, seen)
    assert not any(token in first.stdout + first.stderr for token in TOKENS.values())

    listed = run(tmp_path, "list", "--group", group[:8], "--json")
    assert sorted(str(r["platform"]) for r in records(listed)) == sorted(NAMES)
    table = run(tmp_path, "list")
    assert "clip.mp4 (youtube)" in table.stdout, table.stdout

    # TikTok is back: resume gives the waiting post its own profile's token.
    tiktok.faults.clear()
    resumed = run(tmp_path, "resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert [(r["platform"], r["state"]) for r in records(resumed)] == [("tiktok", "confirmed")]
    assert [p.sha256 for p in tiktok.tiktok.published()] == [sha]
    # The same command again sends nothing to anyone.
    counts = {name: len(s.sim.requests) for name, s in servers.items()}
    again = run(tmp_path, "upload", str(video), "--to", "tiktok,youtube,instagram", "--json")
    assert again.returncode == 0, again.stderr
    assert {str(r["platform"]): r["state"] for r in records(again)} == dict.fromkeys(
        NAMES, "confirmed")  # fmt: skip
    assert {str(r["post_id"]) for r in records(again)} == {str(r["post_id"]) for r in
                                                           posts.values()}  # fmt: skip
    assert {name: len(s.sim.requests) for name, s in servers.items()} == counts
    assert again.stderr.count("already posted") == 3

    report = run(tmp_path, "report", "--format", "text")
    assert f"clip.mp4 (tiktok, group {group})" in report.stdout, report.stdout


def test_to_refuses_a_destination_without_a_token_and_one_site_flags(
    servers: dict[str, SimulatorServer], tmp_path: Path
) -> None:
    write_config(tmp_path / "config", servers)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x" * 1000)
    proc = run(tmp_path, "upload", str(video), "--to", "youtube,x")
    assert proc.returncode == 2
    assert "--to x: platform x needs an access token" in proc.stderr
    assert "steadypost login --profile x" in proc.stderr
    proc = run(tmp_path, "upload", str(video), "--to", "youtube", "-e", servers["youtube"].url)
    assert proc.returncode == 2
    assert "--endpoint name one site" in proc.stderr
    proc = run(tmp_path, "upload", str(video), "--to", "youtube,nowhere")
    assert proc.returncode == 2
    assert "--to nowhere: not a profile" in proc.stderr
    assert not any(len(s.sim.requests) for s in servers.values())
