"""The CLI as a creator meets it, in real processes: Ctrl-C names the server's own offset,
``--bwlimit`` holds the speed, ``-j`` lets a healthy site go on while another is busy,
``list`` fits a real terminal, ``login`` keeps the token in the keyring, and a refused token
says where it came from."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

from test_cli_process import env, make_file, steadypost

from steadypost import Journal, PostState
from steadypost.cli.output import size
from steadypost.journal import make_owner
from steadypost.paths import config_dir
from steadypost.testing import PlatformSimulator, Respond, SimulatorServer
from tusd import TusServer

MiB = 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def test_ctrl_c_mid_chunk_says_how_much_the_server_really_holds(
    tus_server: TusServer, tmp_path: Path
) -> None:
    """One 32 MiB chunk at 8 MiB/s, cut by SIGINT: the journal has only the creation's bytes,
    the server more; the message gives the server's figure, and resume goes on from it."""
    video = make_file(tmp_path / "cut.mp4", 40 * MiB)
    started = time.monotonic()
    proc = subprocess.Popen(
        steadypost("upload", str(video), "-e", tus_server.endpoint, "--chunk-size", "32MiB",
                   "--bwlimit", "8M"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    time.sleep(2.5)  # about 20 MiB out, mid-chunk
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    with Journal() as journal:
        [post] = journal.list()
    [stored] = tus_server.uploads()
    held = tus_server.stored_bytes(stored.id)
    assert post.offset < 1 * MiB < 10 * MiB < held < 32 * MiB  # the cut chunk's bytes are there
    assert f"the server holds {held:,} of {40 * MiB:,} bytes" in stderr, stderr
    assert "it said so just now" in stderr
    assert stdout.startswith("waiting")
    # The speed was held: 8 MiB/s for about 2.5 s is about 20 MiB (and a burst of 4).
    assert held < 8 * MiB * (time.monotonic() - started) + 5 * MiB

    resumed = subprocess.run(steadypost("resume", "--json"), capture_output=True, text=True,
                             env=env(), timeout=60)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"{size(40 * MiB - held)} sent" in resumed.stderr  # only what the server lacked
    [done] = tus_server.completed()
    assert done.id == stored.id  # the same upload, finished from the server's offset


def test_bwlimit_caps_the_speed(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "slow.mp4", 3 * MiB)
    started = time.monotonic()
    proc = subprocess.run(
        steadypost("upload", str(video), "-e", tus_server.endpoint, "--bwlimit", "1M"),
        capture_output=True, text=True, env=env(), timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    # 3 MiB at 1 MiB/s, less a half-second burst: 2.5 s at least.
    assert 2.4 <= elapsed < 20, elapsed
    free_started = time.monotonic()
    free = subprocess.run(steadypost("upload", str(video), "-e", tus_server.endpoint, "--new"),
                          capture_output=True, text=True, env=env(), timeout=60)  # fmt: skip
    assert free.returncode == 0, free.stderr
    assert time.monotonic() - free_started < elapsed


def test_j2_lets_the_healthy_site_go_on_while_the_other_is_busy(tmp_path: Path) -> None:
    """Site A answers its first 3 requests 503 (Retry-After 1 s); site B is fine. With -j 2,
    B's post is confirmed while A still waits: each site's guard paces only its own posts."""
    busy = PlatformSimulator()
    busy.faults.add(Respond(status=503, retry_after=1, times=3))
    healthy = PlatformSimulator()
    a_video = make_file(tmp_path / "a.mp4", 300_000)
    b_video = make_file(tmp_path / "b.mp4", 300_000)
    with SimulatorServer(busy) as a, SimulatorServer(healthy) as b:
        for video, server in ((a_video, a), (b_video, b)):
            added = subprocess.run(steadypost("add", str(video), "-e", f"{server.url}/files/"),
                                   capture_output=True, text=True, env=env(), timeout=30)
            assert added.returncode == 0, added.stderr
        proc = subprocess.run(steadypost("resume", "-j", "2", "--json"), capture_output=True,
                              text=True, env=env(), timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    states = {Path(r["file"]).name: r["state"] for r in map(json.loads, proc.stdout.splitlines())}
    assert states == {"a.mp4": "confirmed", "b.mp4": "confirmed"}
    with Journal() as journal:
        confirmed = {}
        for post in journal.list():
            [at] = [e.at_ts for e in journal.events(post.post_id)
                    if e.kind == "state" and e.data.get("to") == "confirmed"]  # fmt: skip
            confirmed[Path(post.path).name] = at
    assert confirmed["b.mp4"] < confirmed["a.mp4"] - 2.0  # B did not wait for A's 3 s
    assert sum(1 for r in busy.requests if r.status == 503) == 3
    assert not any(r.status == 503 for r in healthy.requests)
    assert "2 posts in" in proc.stderr
    assert "2 confirmed" in proc.stderr


def _terminal(cmd: list[str], environ: dict[str, str], columns: int) -> str:
    """Run with stdout and stderr on a pseudo-terminal ``columns`` wide; what it showed."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=environ)  # fmt: skip
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=10) == 0
    return seen.decode(errors="replace")


def test_list_fits_a_real_terminal_and_colours_the_states(tmp_path: Path) -> None:
    with Journal() as journal:
        owner = make_owner()
        for n in range(2):
            video = make_file(tmp_path / f"holiday-in-the-mountains-day-{n}.mp4", 300_000)
            post = journal.add(path=video, endpoint="https://uploads.example.com/files/",
                               identity=_identity(video))  # fmt: skip
            journal.transition(post.post_id, PostState.UPLOADING, owner=owner)
            journal.transition(post.post_id, PostState.WAITING, owner=owner, offset=126_000,
                               next_attempt_at=time.time() + 600,
                               last_error="server busy (503)")  # fmt: skip
    environ = {k: v for k, v in env(TERM="xterm-256color").items() if k != "COLUMNS"}
    shown = _terminal(steadypost("list"), environ, columns=80)
    lines = [ANSI.sub("", line) for line in shown.replace("\r", "").splitlines() if line]
    assert len(lines) == 3, shown
    assert all(len(line) <= 80 for line in lines), lines
    assert "waiting" in shown
    assert "\x1b[33m" in shown
    assert "next try in 10 min" in lines[1]  # what comes next survives the narrow screen
    assert "42%" in lines[1].split()
    wide = _terminal(steadypost("list"), environ, columns=200)
    assert any("next try in 10 min" in line for line in wide.splitlines())


def _identity(video: Path):  # type: ignore[no-untyped-def]
    from steadypost import snapshot_file

    return snapshot_file(video).identity


def test_login_keeps_the_token_in_the_keyring_and_a_refusal_names_it(tmp_path: Path) -> None:
    """login (token on stdin) -> keyring file backend; upload sends it; 401 says from where;
    logout forgets it; without a token the 401 says none was sent."""
    sim = PlatformSimulator()
    video = make_file(tmp_path / "clip.mp4", 200_000)
    with SimulatorServer(sim) as server:
        endpoint = f"{server.url}/files/"
        login = subprocess.run(
            steadypost("login", "--profile", "travel", "-e", endpoint, "--token-stdin"),
            input="tok-travel-123\n", capture_output=True, text=True, env=env(), timeout=30,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        assert "the token is in the OS keyring" in login.stderr
        config = config_dir() / "config.toml"
        assert "tok-travel-123" not in config.read_text()
        assert config.stat().st_mode & 0o777 == 0o600
        ok = subprocess.run(steadypost("--profile", "travel", "upload", str(video)),
                            capture_output=True, text=True, env=env(), timeout=60)  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert {r.headers.get("authorization") for r in sim.requests} == {"Bearer tok-travel-123"}

        sim.faults.add(Respond(status=401, times=None))
        refused = subprocess.run(steadypost("--profile", "travel", "upload", str(video), "--new"),
                                 capture_output=True, text=True, env=env(), timeout=60)
        assert refused.returncode == 5, refused.stderr
        assert ("the server refused the token (401 Unauthorized); it came from the OS keyring "
                "(profile 'travel'): run `steadypost login --profile travel`") in refused.stderr

        out = subprocess.run(steadypost("logout", "--profile", "travel"), capture_output=True,
                             text=True, env=env(), timeout=30)  # fmt: skip
        assert "forgot the token of profile 'travel' (from the OS keyring)" in out.stderr
        gone = subprocess.run(steadypost("--profile", "travel", "upload", str(video), "--new"),
                              capture_output=True, text=True, env=env(), timeout=60)
        assert gone.returncode == 5
        assert "no token was sent" in gone.stderr
        assert "run `steadypost login --profile travel`" in gone.stderr
    assert PostState.FAILED.value in gone.stdout
