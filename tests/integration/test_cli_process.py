"""``steadypost`` as a real process: the console script, ``python -m steadypost``, a terminal.

* ``upload`` against the reference tus server (``tus_server`` fixture), with and without a
  terminal: a rich progress bar under a pseudo-terminal, plain lines into a pipe;
* Ctrl-C (a real SIGINT) while the upload waits out a ``Retry-After``: exit 130, the post
  waits in the journal, and ``resume`` finishes it once the server is back;
* ``steadypost demo`` from start to end in well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from steadypost import Journal, PostState
from steadypost.cli import cli
from steadypost.cli.app import Runtime
from steadypost.testing import FakeClock, Outage, PlatformSimulator, SimulatorServer
from tusd import TusServer

MiB = 1024 * 1024
SCRIPT = Path(sys.executable).with_name("steadypost")
COLOR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|38;[25];[0-9;]+)m")
BAR = "━"


def steadypost(*args: str) -> list[str]:
    """The installed console script (as a creator runs it)."""
    return [str(SCRIPT), *args]


def module(*args: str) -> list[str]:
    return [sys.executable, "-m", "steadypost", *args]


def make_file(path: Path, size: int) -> Path:
    block = hashlib.sha256(path.name.encode()).digest() * 2048
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**base, "COLUMNS": "120", **extra}


def run_in_pty(cmd: list[str], environ: dict[str, str], timeout: float = 30.0
               ) -> tuple[int, str, str]:  # fmt: skip
    """Run with stderr on a pseudo-terminal; return (exit code, stdout, terminal output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=environ
    )
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout, _ = proc.communicate(timeout=timeout)
    return proc.returncode, stdout.decode(), seen.decode(errors="replace")


# --- upload against the real tus server ----------------------------------------------------


def test_console_script_uploads_to_the_reference_server(tus_server: TusServer,
                                                        tmp_path: Path) -> None:  # fmt: skip
    video = make_file(tmp_path / "clip.mp4", 3 * MiB)
    proc = subprocess.run(
        steadypost("upload", str(video), "--endpoint", tus_server.endpoint,
                   "--chunk-size", "1MiB", "--json"),
        capture_output=True, text=True, env=env(TERM="xterm"), timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [record] = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout: results only
    assert record["state"] == "confirmed"
    assert record["bytes"] == 3 * MiB
    assert record["file"] == str(video)
    assert record["upload_url"].startswith(tus_server.endpoint)
    # stderr is not a terminal: plain progress lines, no bar, no colours
    assert "clip.mp4: 100% sent (3.0 MiB of 3.0 MiB)" in proc.stderr
    assert BAR not in proc.stderr
    assert "\x1b[" not in proc.stderr
    [stored] = tus_server.completed()
    assert tus_server.sha256(stored.id) == hashlib.sha256(video.read_bytes()).hexdigest()
    assert stored.metadata["filename"] == "clip.mp4"


def test_progress_bar_on_a_terminal(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "clip.mp4", 4 * MiB)
    cmd = module("upload", str(video), "-e", tus_server.endpoint, "--chunk-size", "256KiB")
    code, stdout, terminal = run_in_pty(cmd, env(TERM="xterm-256color"))
    assert code == 0, terminal
    assert BAR in terminal
    assert "4.0/4.0 MiB" in terminal
    assert COLOR.search(terminal)
    assert stdout.startswith("confirmed")
    assert BAR not in stdout

    plain = run_in_pty([*cmd, "--new"], env(TERM="xterm-256color", NO_COLOR="1"))
    assert plain[0] == 0
    assert BAR in plain[2]
    assert not COLOR.search(plain[2])


# --- Ctrl-C ----------------------------------------------------------------------------------


def test_sigint_while_waiting_exits_130_and_resume_finishes(tmp_path: Path) -> None:
    clock = FakeClock()  # never advanced: the platform stays down until the faults are cleared
    sim = PlatformSimulator(clock=clock, faults=[Outage(clock.now(), clock.now() + 1e6,
                                                        retry_after=30)])  # fmt: skip
    video = make_file(tmp_path / "clip.mp4", 200_000)
    with SimulatorServer(sim) as server:
        proc = subprocess.Popen(
            steadypost("upload", str(video), "-e", f"{server.url}/files/"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
        )  # fmt: skip
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until the first wait is announced
        assert "server busy (503), retrying in 30 s" in line, line
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert "steadypost resume" in stderr
        assert stdout.startswith("waiting")
        with Journal() as journal:
            [post] = journal.list()
        assert post.state is PostState.WAITING

        # An hour later (the server asked for time, and the journal remembers it) the
        # platform is back: resume finishes the post over the same real socket.
        sim.faults.clear()
        later = Runtime(clock=lambda: time.time() + 3600)
        resumed = CliRunner().invoke(cli, ["resume"], obj=later)
        assert resumed.exit_code == 0, resumed.output
        assert resumed.stdout.startswith("confirmed")
        assert [u.completed for u in sim.uploads.values()] == [True]


# --- the demo --------------------------------------------------------------------------------


def test_demo_finishes_in_well_under_a_minute() -> None:
    started = time.monotonic()
    proc = subprocess.run(steadypost("demo"), capture_output=True, text=True, env=env(),
                          timeout=60)  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 60
    story = proc.stderr
    assert "server busy (503), retrying in 30 s" in story
    assert "connection lost, retrying in" in story
    assert "resuming at byte" in story
    assert "(the server's offset), not from 0" in story
    assert "server answered 500" in story
    assert "matches the file" in story
    assert "uploads on the platform: 1" in story
    first, second = [line for line in proc.stdout.splitlines() if "holiday.mp4  01" in line][:2]
    assert first.startswith("unconfirmed")
    assert second.startswith("confirmed")
    assert "timeline of" in proc.stdout
    assert "verify" in proc.stdout
    # it used a temporary journal, not the user's
    assert not (Path(os.environ["STEADYPOST_HOME"]) / "journal.sqlite3").exists()


def test_python_dash_m() -> None:
    proc = subprocess.run(module("--version"), capture_output=True, text=True, env=env(),
                          timeout=30)  # fmt: skip
    assert proc.returncode == 0
    assert proc.stdout.startswith("steadypost, version ")
