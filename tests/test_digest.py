"""The file hasher: the right SHA-256 on its own thread, a changed file caught, stoppable,
and awaited by the async driver without blocking the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from steadypost import AsyncUploader, FileProblemError, RetryPolicy, SteadypostError, Uploader
from steadypost.digest import BLOCK_SIZE, FileHasher
from tusd import TusServer


def _clip(tmp_path: Path, data: bytes) -> Path:
    video = tmp_path / "clip.mp4"
    video.write_bytes(data)
    return video


def _start(path: Path) -> FileHasher:
    st = path.stat()
    return FileHasher.start(str(path), st.st_size, st.st_mtime_ns)


def _refused(hasher: FileHasher, match: str) -> None:
    with pytest.raises(FileProblemError, match=match):
        hasher.result()


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE])
def test_the_digest_is_the_files_sha256(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    assert _start(_clip(tmp_path, data)).result() == hashlib.sha256(data).hexdigest()


def test_it_hashes_on_its_own_daemon_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[threading.Thread] = []
    real = FileHasher._hash

    def spy(self: FileHasher) -> str:
        seen.append(threading.current_thread())
        return real(self)

    monkeypatch.setattr(FileHasher, "_hash", spy)
    _start(_clip(tmp_path, b"x" * 10)).result()
    assert seen[0] is not threading.main_thread()
    assert seen[0].daemon
    assert seen[0].name == "steadypost-sha256:clip.mp4"


def test_a_file_changed_before_hashing_is_refused(tmp_path: Path) -> None:
    video = _clip(tmp_path, b"a" * 100)
    st = video.stat()
    video.write_bytes(b"b" * 101)
    _refused(FileHasher.start(str(video), st.st_size, st.st_mtime_ns), "changed since its upload")


def test_a_file_changed_while_hashing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = _clip(tmp_path, b"a" * 100)
    st = video.stat()
    calls: list[int] = []
    real_fstat = os.fstat

    def fstat(fd: int) -> Any:
        calls.append(fd)
        if len(calls) == 2:  # the check after the last block: someone wrote to the file
            os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", fstat)
    _refused(_start(video), "changed while it was uploaded")


def test_a_missing_file_is_a_file_problem(tmp_path: Path) -> None:
    _refused(FileHasher.start(str(tmp_path / "gone.mp4"), 10, 0), "the file is gone")


def test_stop_ends_the_reading_early(tmp_path: Path) -> None:
    st = _clip(tmp_path, b"z" * (4 * BLOCK_SIZE)).stat()
    hasher = FileHasher(str(tmp_path / "clip.mp4"), st.st_size, st.st_mtime_ns)
    hasher.stop()  # before it runs: it must not read the file at all
    hasher._run()
    _refused(hasher, "hashing stopped")


def test_a_failed_upload_stops_its_hasher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = _clip(tmp_path, b"v" * 1000)
    started: list[FileHasher] = []
    real_start = FileHasher.start

    def start(path: str, size: int, mtime_ns: int) -> FileHasher:
        started.append(real_start(path, size, mtime_ns))
        return started[-1]

    monkeypatch.setattr(FileHasher, "start", start)
    policy = RetryPolicy(max_attempts=1)
    with (
        Uploader(sleep=lambda s: None, retry=policy) as up,
        pytest.raises(SteadypostError),
    ):
        up.upload(video, "http://127.0.0.1:9/files")  # discard port: refused at once
    assert started
    assert started[0]._stop.is_set()


def test_an_async_upload_awaits_a_slow_hasher_without_blocking_the_loop(
    tus_server: TusServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(50_000)
    video = _clip(tmp_path, data)
    release = threading.Event()
    real_hash = FileHasher._hash

    def slow_hash(self: FileHasher) -> str:
        release.wait(5)  # held until the loop has shown it was free while waiting
        return real_hash(self)

    monkeypatch.setattr(FileHasher, "_hash", slow_hash)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not release.is_set():
            ticks += 1
            if ticks >= 20:
                release.set()
            await asyncio.sleep(0.005)

    async def main() -> str | None:
        tick_task = asyncio.create_task(ticker())
        async with AsyncUploader() as up:
            result = await up.upload(video, tus_server.endpoint)
        await tick_task
        return result.sha256

    started = time.monotonic()
    assert asyncio.run(main()) == hashlib.sha256(data).hexdigest()
    assert ticks >= 20  # the event loop kept running while the upload waited for the digest
    assert time.monotonic() - started < 5
