"""The daemon's examples work: the creator tool, the asyncio script, the service files."""

from __future__ import annotations

import configparser
import hashlib
import plistlib
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from test_daemon_process import DaemonProcess, all_confirmed, daemons, make_file, wait_until

from tusd import TusServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KiB = 1024

__all__ = ["daemons"]  # the fixture, shared with test_daemon_process


def example(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_creator_tool_posts_now_or_hands_over_to_the_daemon(
    tus_server: TusServer, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    first = make_file(tmp_path / "first.mp4", 200 * KiB)
    now = example("creator_tool.py", tus_server.endpoint, first, "--caption", "Day one")
    assert now.returncode == 0, now.stderr
    assert now.stdout.startswith("confirmed")

    d = daemons()
    d.wait_log("daemon started")
    second = make_file(tmp_path / "second.mp4", 200 * KiB)
    handed = example("creator_tool.py", tus_server.endpoint, second)
    assert handed.returncode == 0, handed.stderr
    assert f"daemon (pid {d.pid})" in handed.stdout
    wait_until(all_confirmed(2), what="both posts confirmed")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    captions = sorted(str(u.metadata.get("caption")) for u in tus_server.completed())
    assert captions == ["Day one", "None"]


def test_async_posts_example(tus_server: TusServer, tmp_path: Path) -> None:
    files = [make_file(tmp_path / f"clip{i}.mp4", 150 * KiB + i) for i in range(3)]
    run = example("async_posts.py", tus_server.endpoint, *files, "--settle")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("confirmed") == 6  # reported after posting, and after settling
    stored = sorted(tus_server.sha256(u.id) for u in tus_server.completed())
    assert stored == sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)


def test_service_files_run_the_daemon() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(EXAMPLES / "steadypost.service")
    assert " daemon" in unit["Service"]["ExecStart"]
    assert "-HUP" in unit["Service"]["ExecReload"]
    with open(EXAMPLES / "com.steadypost.daemon.plist", "rb") as f:
        plist = plistlib.load(f)
    assert plist["Label"] == "com.steadypost.daemon"
    assert plist["ProgramArguments"][1] == "daemon"
