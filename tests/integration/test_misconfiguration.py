"""A wrong endpoint is bad input (exit 2, the real cause), not an outage (issue 12, item 9).

Through the real CLI in a subprocess, on the real clock: nothing listening, ``https://``
against a plain-HTTP tus server, and a web server that is not tus. Each exits 2 at
once, says why, leaves the post ``failed`` with the cause and no breaker state for the
next run. Once an origin has answered like a tus server, the same failure is an outage.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadypost import Journal, PostState
from steadypost.hosts import BREAKER_KIND
from tusd import TusServer


def run(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steadypost", *args], capture_output=True, text=True,
        timeout=timeout, env={"STEADYPOST_HOME": str(home), "PATH": "/usr/bin:/bin",
                              "COLUMNS": "200"},
    )  # fmt: skip


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"v" * 200_000)
    return path


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain web server that is not tus (501 to OPTIONS, HTML for the rest)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/files/"
    server.shutdown()
    server.server_close()


def assert_misconfigured(done: subprocess.CompletedProcess[str], home: Path, cause: str) -> None:
    assert done.returncode == 2, done.stderr + done.stdout
    assert cause in done.stdout + done.stderr
    with Journal(home / "journal.sqlite3") as journal:
        (post,) = journal.list()
        assert post.state is PostState.FAILED
        assert "is the endpoint right" in (post.last_error or "").lower()
        origin = post.endpoint.split("/files")[0]
        host, port = origin.split("//")[1].split(":")
        for name in {origin, f"{origin.split(':')[0]}://{host}:{port}"}:
            assert journal.get_host_state(name, BREAKER_KIND) is None


def test_nothing_listening_exits_2_at_once(tmp_path: Path, video: Path, closed_port: int) -> None:
    started = time.monotonic()
    done = run("upload", str(video), "-e", f"http://127.0.0.1:{closed_port}/files/",
               home=tmp_path / "home")  # fmt: skip
    assert time.monotonic() - started < 20  # no backoff: before, 15 s then "circuit open"
    assert_misconfigured(done, tmp_path / "home", "could not connect")


def test_https_against_a_plain_http_port_exits_2(
    tmp_path: Path, video: Path, tus_server: TusServer
) -> None:
    endpoint = tus_server.endpoint.replace("http://", "https://")
    done = run("upload", str(video), "-e", endpoint, home=tmp_path / "home")
    assert_misconfigured(done, tmp_path / "home", "could not connect")


def test_a_web_server_that_is_not_tus_exits_2(
    tmp_path: Path, video: Path, web_server: str
) -> None:
    done = run("upload", str(video), "-e", web_server, home=tmp_path / "home")
    assert_misconfigured(done, tmp_path / "home", "does not answer like a tus server")


def test_the_daemon_does_not_retry_a_wrong_endpoint_forever(
    tmp_path: Path, video: Path, closed_port: int
) -> None:
    home = tmp_path / "home"
    added = run("add", str(video), "-e", f"http://127.0.0.1:{closed_port}/files/", "--json",
                home=home)  # fmt: skip
    assert added.returncode == 0, added.stderr
    done = run("daemon", "--once", home=home)
    assert "could not connect" in done.stderr
    with Journal(home / "journal.sqlite3") as journal:
        (post,) = journal.list()
        assert post.state is PostState.FAILED  # settled: never due again
        assert journal.next_due_at() is None


def test_once_it_has_answered_a_refusing_server_is_an_outage(
    tmp_path: Path, video: Path, tus_server: TusServer
) -> None:
    home = tmp_path / "home"
    first = run("upload", str(video), "-e", tus_server.endpoint, "--json", home=home)
    assert first.returncode == 0, first.stderr
    tus_server.stop()
    other = video.with_name("other.mp4")
    other.write_bytes(b"w" * 1000)
    done = run("upload", str(other), "-e", tus_server.endpoint, "--no-wait", "--json",
               home=home)  # fmt: skip
    assert done.returncode == 4, done.stderr  # waiting: the daemon or `resume` goes on
    states = [json.loads(line)["state"] for line in done.stdout.splitlines() if line.strip()]
    assert states == ["waiting"]
