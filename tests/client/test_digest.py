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
from steadypost.drivers.files import BLOCK_SIZE, FileHasher, OpenedFile, snapshot_file
from tusd import TusServer


def _clip(tmp_path: Path, data: bytes) -> Path:
    video = tmp_path / "clip.mp4"
    video.write_bytes(data)
    return video


def _open(path: Path) -> OpenedFile:
    file = snapshot_file(path)
    return OpenedFile(file.path, file.identity)


def _start(path: Path) -> FileHasher:
    return FileHasher.start(_open(path))


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

    def spy(self: FileHasher, reader: OpenedFile) -> str:
        seen.append(threading.current_thread())
        return real(self, reader)

    monkeypatch.setattr(FileHasher, "_hash", spy)
    _start(_clip(tmp_path, b"x" * 10)).result()
    assert seen[0] is not threading.main_thread()
    assert seen[0].daemon
    assert seen[0].name == "steadypost-sha256:clip.mp4"


def test_a_file_changed_before_it_is_opened_is_refused(tmp_path: Path) -> None:
    video = _clip(tmp_path, b"a" * 100)
    file = snapshot_file(video)
    video.write_bytes(b"b" * 101)
    with pytest.raises(FileProblemError, match="changed since its upload began"):
        OpenedFile(file.path, file.identity)


def test_an_edit_with_the_mtime_set_back_is_still_a_change(tmp_path: Path) -> None:
    video = _clip(tmp_path, b"a" * 100)
    file = snapshot_file(video)
    time.sleep(0.01)
    with video.open("r+b") as f:  # same size, then the old mtime restored: only ctime tells
        f.write(b"b")
    os.utime(video, ns=(file.mtime_ns, file.mtime_ns))
    with pytest.raises(FileProblemError, match="written to or its metadata changed"):
        OpenedFile(file.path, file.identity)


def test_a_file_replaced_by_a_rename_is_another_file(tmp_path: Path) -> None:
    video = _clip(tmp_path, b"a" * 100)
    file = snapshot_file(video)
    other = _clip(tmp_path / "..", b"b" * 100)
    os.utime(other, ns=(file.mtime_ns, file.mtime_ns))
    os.replace(other, video)
    with pytest.raises(FileProblemError, match="changed since its upload began"):
        OpenedFile(file.path, file.identity)


def test_the_descriptor_stays_open_until_the_last_reader_lets_go(tmp_path: Path) -> None:
    opened = _open(_clip(tmp_path, b"x" * 10))
    reader = opened.acquire()
    opened.release()
    assert reader.read(10, 0) == b"x" * 10  # still open: the reader holds it
    reader.release()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(opened.fd)


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
    file = snapshot_file(_clip(tmp_path, b"x"))
    os.unlink(file.path)
    with pytest.raises(FileProblemError, match="the file is gone"):
        OpenedFile(file.path, file.identity)


def test_stop_ends_the_reading_early(tmp_path: Path) -> None:
    opened = _open(_clip(tmp_path, b"z" * (4 * BLOCK_SIZE)))
    hasher = FileHasher(opened)
    hasher.stop()  # before it runs: it must not read the file at all
    hasher._run(opened.acquire())
    with pytest.raises(FileProblemError, match="hashing stopped"):
        hasher.future.result()


def test_a_failed_upload_stops_its_hasher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = _clip(tmp_path, b"v" * 1000)
    started: list[FileHasher] = []
    real_start = FileHasher.start

    def start(file: OpenedFile) -> FileHasher:
        started.append(real_start(file))
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

    def slow_hash(self: FileHasher, reader: OpenedFile) -> str:
        release.wait(5)  # held until the loop has shown it was free while waiting
        return real_hash(self, reader)

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
