"""``steadypost daemon`` as a real process, against the reference tus server and the simulator.

* posts added with ``steadypost add`` while it runs are uploaded, each once;
* ``kill -9`` mid-upload, start again: every post finishes with the exact bytes, once;
* SIGTERM mid-upload: exit 0 within 5 s, the offset saved, the post ``waiting``;
* a second daemon on the same journal is refused, naming the first one's pid;
* a watch folder waits for a file that is still being written;
* SIGHUP reloads the profile (a new token is used from then on).

Uploads that must be caught halfway go through :class:`SlowProxy`, a loopback TCP proxy
that forwards the client's bytes at a set rate, so a test knows it is mid-upload without
guessing at timings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from steadypost import Journal, Post, PostState
from steadypost.testing import FakeClock, PlatformSimulator, SimulatorServer
from tusd import TusServer

KiB = 1024
MiB = 1024 * KiB
SCRIPT = Path(sys.executable).with_name("steadypost")


# --- helpers ----------------------------------------------------------------------------------


def steadypost(*args: str | Path) -> list[str]:
    return [str(SCRIPT), *map(str, args)]


def make_file(path: Path, size: int) -> Path:
    block = hashlib.sha256(path.name.encode()).digest() * 2048
    path.write_bytes((block * (size // len(block) + 1))[:size])
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


def posts() -> list[Post]:
    with Journal() as journal:
        return journal.list()


def all_confirmed(count: int) -> Callable[[], bool]:
    def check() -> bool:
        found = posts()
        return len(found) == count and all(p.state is PostState.CONFIRMED for p in found)

    return check


class DaemonProcess:
    """``steadypost daemon ...`` in the background, its log in a file."""

    def __init__(self, tmp_path: Path, *args: str | Path, env: dict[str, str] | None = None,
                 name: str = "daemon") -> None:  # fmt: skip
        self.log_path = tmp_path / f"{name}-{time.monotonic_ns()}.log"
        self._log: IO[str] = open(self.log_path, "w")  # noqa: SIM115 - closed in wait()
        cmd = steadypost("daemon", "--poll-interval", "0.2", *args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log, env=env or dict(os.environ))  # fmt: skip
        self.pid = self.proc.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_log(self, text: str, timeout: float = 20.0) -> None:
        wait_until(lambda: text in self.log or self.proc.poll() is not None, timeout, text)
        assert text in self.log, self.log

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(*args: str | Path, **kwargs: object) -> DaemonProcess:
        d = DaemonProcess(tmp_path, *args, **kwargs)  # type: ignore[arg-type]
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


class SlowProxy:
    """A loopback TCP proxy passing the client's bytes on at ``rate`` bytes/s (None: at once)."""

    def __init__(self, target_port: int, rate: float | None) -> None:
        self.target_port = target_port
        self.rate = rate
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/files/"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, throttled: bool) -> None:
        try:
            while data := src.recv(16 * KiB):
                dst.sendall(data)
                if throttled and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:  # one side hung up: hang up the other (a killed client aborts its request)
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.server.close()


def assert_stored_once(server: TusServer, files: list[Path]) -> None:
    """Every file is on the server exactly once, byte for byte."""
    stored = sorted(server.sha256(u.id) for u in server.completed())
    assert stored == sorted(sha256_of(f) for f in files)


def add(*args: str | Path) -> list[str]:
    proc = subprocess.run(steadypost("add", *args, "--json"), capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line)["post_id"] for line in proc.stdout.splitlines()]


def status() -> dict[str, object]:
    proc = subprocess.run(steadypost("status", "--json"), capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


# --- the tests ----------------------------------------------------------------------------


def test_posts_added_through_the_cli_are_uploaded_by_the_running_daemon(
    tus_server: TusServer, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    files = [make_file(tmp_path / f"day{i}.mp4", 300 * KiB + i) for i in range(5)]
    d = daemons("--log-json")
    d.wait_log("daemon started")
    ids = add(*files, "--endpoint", tus_server.endpoint)
    wait_until(all_confirmed(5), what="five confirmed posts")

    info = status()
    assert info["daemon"] == {"running": True, "pid": d.pid, "since": info["daemon"]["since"],  # type: ignore[index]
                              "host": socket.gethostname()}  # fmt: skip
    assert info["counts"]["confirmed"] == 5  # type: ignore[index]
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert_stored_once(tus_server, files)
    lines = [json.loads(line) for line in d.log.splitlines()]  # --log-json: every line is JSON
    confirmed = {r["post_id"] for r in lines if r.get("state") == "confirmed"}
    assert confirmed == set(ids)
    assert status()["daemon"] == {"running": False}


def test_kill_9_mid_upload_then_a_restart_finishes_every_post_once(
    tus_server: TusServer, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    proxy = SlowProxy(int(tus_server.base_url.rsplit(":", 1)[1]), rate=1 * MiB)
    files = [make_file(tmp_path / f"clip{i}.mp4", 768 * KiB + i) for i in range(5)]
    add(*files, "--endpoint", proxy.endpoint())
    first = daemons("--chunk-size", "128KiB", "--concurrency", "2")
    wait_until(lambda: any(p.state is PostState.UPLOADING and p.offset >= 256 * KiB
                           for p in posts()), what="an upload halfway")  # fmt: skip
    first.proc.kill()  # SIGKILL: no goodbye, no checkpoint beyond the last chunk
    first.wait()
    cut = {p.post_id: p for p in posts() if p.state is PostState.UPLOADING}
    assert cut  # left leased to a dead process
    assert all(f":{first.pid}:" in (p.lease_owner or "") for p in cut.values())

    proxy.rate = None
    second = daemons("--chunk-size", "128KiB")
    wait_until(all_confirmed(5), timeout=30, what="five confirmed posts after the restart")
    second.signal(signal.SIGTERM)
    assert second.wait() == 0
    assert_stored_once(tus_server, files)
    final = {p.post_id: p for p in posts()}
    for post_id, before in cut.items():
        if before.upload_url:  # resumed into the same upload, not begun again
            assert final[post_id].upload_url == before.upload_url
    assert f"its uploader (steadypost process {first.pid} on host" in second.log
    assert "ended without a word" in second.log
    proxy.close()
    # The server still counts the PATCH the killed daemon abandoned as in flight and would
    # wait out its 5 s shutdown grace for it: stop it at once instead.
    tus_server.kill()


def test_sigterm_mid_upload_saves_the_offset_and_exits_within_5_s(
    tus_server: TusServer, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    proxy = SlowProxy(int(tus_server.base_url.rsplit(":", 1)[1]), rate=1 * MiB)
    video = make_file(tmp_path / "long.mp4", 3 * MiB)
    [post_id] = add(video, "--endpoint", proxy.endpoint())
    d = daemons("--chunk-size", "256KiB")
    wait_until(lambda: posts()[0].offset >= 512 * KiB, what="an upload halfway")
    started = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert time.monotonic() - started < 5
    [saved] = posts()
    assert saved.state is PostState.WAITING
    assert saved.lease_owner is None
    assert 512 * KiB <= saved.offset < 3 * MiB
    assert saved.next_attempt_at is not None
    assert saved.next_attempt_ts <= time.time()
    assert "SIGTERM: stopping" in d.log
    assert f"checkpointed at byte {saved.offset:,}" in d.log

    proxy.rate = None
    once = subprocess.run(steadypost("daemon", "--once"), capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert f"from byte {saved.offset:,}" in once.stderr
    [done] = posts()
    assert done.state is PostState.CONFIRMED
    assert done.post_id == post_id
    assert len(tus_server.uploads()) == 1  # resumed, not begun again
    assert_stored_once(tus_server, [video])
    proxy.close()


def test_a_second_daemon_is_refused_with_the_pid_of_the_first(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    first = daemons()
    first.wait_log("daemon started")
    started = time.monotonic()
    second = subprocess.run(steadypost("daemon"), capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 5
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert status()["daemon"]["pid"] == first.pid  # type: ignore[index]
    first.signal(signal.SIGINT)  # Ctrl-C: a clean stop
    assert first.wait() == 0
    assert "SIGINT: stopping" in first.log


def test_a_watched_file_is_posted_once_it_stopped_growing(
    tus_server: TusServer, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    folder = tmp_path / "to-post"
    folder.mkdir()
    (folder / "clip.mp4.json").write_text('{"caption": "Day one"}')
    (folder / ".clip.mp4.swp").write_bytes(b"editor")
    (folder / "other.mp4.crdownload").write_bytes(b"half a download")
    d = daemons("--watch", folder, "--settle", "1", "--endpoint", tus_server.endpoint)
    d.wait_log("daemon started")

    pieces = [os.urandom(64 * KiB) for _ in range(8)]
    clip = folder / "clip.mp4"
    with open(clip, "wb") as out:  # written slowly, as an export or a copy is
        for piece in pieces:
            out.write(piece)
            out.flush()
            time.sleep(0.3)
            assert posts() == []  # never posted half-done
    wait_until(all_confirmed(1), what="the watched file confirmed")
    [upload] = tus_server.uploads()
    assert upload.length == len(b"".join(pieces))
    assert tus_server.sha256(upload.id) == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert upload.metadata["caption"] == "Day one"
    assert upload.metadata["filename"] == "clip.mp4"
    d.signal(signal.SIGTERM)
    assert d.wait() == 0

    # After a restart the same file is not posted again.
    again = subprocess.run(steadypost("daemon", "--once", "--watch", folder, "--settle", "0.3",
                                      "--endpoint", tus_server.endpoint),
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(posts()) == 1
    assert len(tus_server.uploads()) == 1


def test_sighup_reloads_the_profile(
    tmp_path: Path, daemons: Callable[..., DaemonProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    monkeypatch.setenv("STEADYPOST_CONFIG_DIR", str(config_dir))
    sim = PlatformSimulator(clock=FakeClock())
    with SimulatorServer(sim) as server:
        def profile(token: str) -> None:
            (config_dir / "config.toml").write_text(
                f'[profiles.default]\nendpoint = "{server.url}/files/"\ntoken = "{token}"\n')

        profile("old-token")
        d = daemons()
        d.wait_log("daemon started")
        profile("new-token")
        d.signal(signal.SIGHUP)
        d.wait_log("configuration reloaded")
        add(make_file(tmp_path / "clip.mp4", 100 * KiB))
        wait_until(all_confirmed(1), what="the post confirmed")
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
    sent = {r.headers.get("authorization") for r in sim.requests}
    assert sent == {"Bearer new-token"}
