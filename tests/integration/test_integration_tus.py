"""steadypost against the reference tus server (@tus/server + @tus/file-store) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client

from steadypost import (
    AsyncUploader,
    ConfigurationError,
    Progress,
    RetriesExhaustedError,
    RetryPolicy,
    StatusError,
    UploadCancelledError,
    Uploader,
)
from tusd import TusServer

CHUNK = 64 * 1024
MiB = 1024 * 1024


def make_file(path: Path, size: int, seed: int = 0) -> Path:
    """Deterministic pseudo-random bytes (incompressible, no repeating pattern)."""
    out = bytearray()
    block = hashlib.sha256(f"{seed}".encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    path.write_bytes(bytes(out[:size]))
    return path


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MiB):
            h.update(block)
    return h.hexdigest()


def no_sleep(_seconds: float) -> None:
    return None


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_sizes_around_the_chunk_size(tus_server: TusServer, tmp_path: Path, size: int) -> None:
    video = make_file(tmp_path / "v.mp4", size, seed=size)
    with Uploader(chunk_size=CHUNK, sleep=no_sleep) as up:
        result = up.upload(video, tus_server.endpoint, metadata={"caption": "size test"})
    [stored] = tus_server.uploads()
    assert stored.completed
    assert stored.length == size
    assert tus_server.sha256(stored.id) == sha(video) == result.sha256
    assert stored.metadata["filename"] == "v.mp4"
    assert stored.metadata["caption"] == "size test"


def test_50_mib_with_defaults(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "big.mp4", 50 * MiB)
    with Uploader() as up:
        result = up.upload(video, tus_server.endpoint)
    [stored] = tus_server.uploads()
    assert stored.completed
    assert tus_server.sha256(stored.id) == sha(video) == result.sha256
    assert result.bytes_sent == 50 * MiB


def test_server_killed_and_restarted_mid_upload(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "v.mp4", 24 * MiB, seed=3)
    killed: list[int] = []
    sleeps: list[float] = []

    def kill_at_10_mib(p: Progress) -> None:
        if not killed and p.sent >= 10 * MiB:
            killed.append(p.sent)
            tus_server.kill()

    def restart_instead_of_waiting(seconds: float) -> None:
        sleeps.append(seconds)
        if not tus_server.running:
            tus_server.restart()

    with Uploader(chunk_size=8 * MiB, sleep=restart_instead_of_waiting) as up:
        result = up.upload(video, tus_server.endpoint, on_progress=kill_at_10_mib)
    assert killed
    assert sleeps
    [stored] = tus_server.uploads()  # the same upload resource, no second one
    assert stored.completed
    assert result.upload_url.endswith(stored.id)
    assert tus_server.sha256(stored.id) == sha(video)
    # Resumed from the server's offset: far less than a second full send.
    assert result.bytes_sent < 24 * MiB + 10 * MiB


def test_relative_location(make_tus_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_tus_server(relative_location=True)
    video = make_file(tmp_path / "v.mp4", 3 * CHUNK)
    with Uploader(chunk_size=CHUNK) as up:
        result = up.upload(video, server.endpoint)
    assert result.upload_url.startswith("http://127.0.0.1:")
    assert server.sha256(server.uploads()[0].id) == sha(video)


def test_file_larger_than_tus_max_size_is_refused_before_creation(
    make_tus_server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    server = make_tus_server(max_size=1000)
    video = make_file(tmp_path / "v.mp4", 5000)
    with Uploader() as up, pytest.raises(StatusError, match="at most 1000"):
        up.upload(video, server.endpoint)
    assert server.uploads() == []


def test_terminate(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "v.mp4", 2 * CHUNK)
    with Uploader(chunk_size=CHUNK) as up:
        result = up.upload(video, tus_server.endpoint)
        up.terminate(result.upload_url, endpoint=tus_server.endpoint)
    head = httpx.head(result.upload_url, headers={"Tus-Resumable": "1.0.0"})
    assert head.status_code in (404, 410)


async def test_async_upload(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "v.webm", 5 * MiB + 3)
    async with AsyncUploader(chunk_size=MiB) as up:
        result = await up.upload(video, tus_server.endpoint)
    assert tus_server.sha256(tus_server.uploads()[0].id) == sha(video) == result.sha256


# --- interop with tuspy (tusclient) ---------------------------------------------------


def test_tuspy_begins_steadypost_finishes(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "v.mp4", 10 * CHUNK + 5)
    peer = tus_client.TusClient(tus_server.endpoint)
    begun = peer.uploader(str(video), chunk_size=CHUNK, metadata={"filename": "v.mp4"})
    begun.upload_chunk()
    begun.upload_chunk()
    assert begun.offset == 2 * CHUNK
    with Uploader(chunk_size=CHUNK) as up:
        result = up.resume(begun.url, video, endpoint=tus_server.endpoint)
    assert result.upload_url == begun.url
    assert result.bytes_sent == 8 * CHUNK + 5  # only what the server lacked
    [stored] = tus_server.uploads()
    assert stored.completed
    assert tus_server.sha256(stored.id) == sha(video)


def test_steadypost_begins_tuspy_finishes(tus_server: TusServer, tmp_path: Path) -> None:
    video = make_file(tmp_path / "v.mp4", 5 * MiB + 5)
    up = Uploader(chunk_size=MiB)
    seen: list[str] = []

    def stop_after_three_chunks(p: Progress) -> None:
        if p.acknowledged >= 3 * MiB:
            up.cancel()

    with up, pytest.raises(UploadCancelledError):
        up.upload(video, tus_server.endpoint, on_progress=stop_after_three_chunks)
    [partial] = tus_server.uploads()
    assert 3 * MiB <= partial.stored_bytes < 4 * MiB
    seen.append(partial.id)
    peer = tus_client.TusClient(tus_server.endpoint)
    finisher = peer.uploader(str(video), chunk_size=MiB, url=tus_server.upload_url(partial.id))
    assert finisher.offset == partial.stored_bytes
    finisher.upload()
    [stored] = tus_server.uploads()
    assert stored.id in seen
    assert stored.completed
    assert tus_server.sha256(stored.id) == sha(video)


def test_nothing_listening_on_a_new_endpoint_is_a_configuration_error_at_once(
    tmp_path: Path,
) -> None:
    video = make_file(tmp_path / "v.mp4", 100)
    sleeps: list[float] = []
    with Uploader(sleep=sleeps.append, retry=RetryPolicy(max_attempts=5)) as up:
        with pytest.raises(ConfigurationError, match="has ever answered like a tus server"):
            up.upload(video, "http://127.0.0.1:9/files/")
        # A wrong URL is not an outage: no wait, no breaker state for the next run.
        assert up.hosts.state("http://127.0.0.1:9").failures == 0
    assert sleeps == []
    assert os.path.exists(video)


def test_an_endpoint_that_answered_before_and_now_refuses_is_an_outage(
    tmp_path: Path, tus_server: TusServer
) -> None:
    video = make_file(tmp_path / "v.mp4", 100)
    sleeps: list[float] = []
    with Uploader(sleep=sleeps.append, retry=RetryPolicy(max_attempts=5)) as up:
        up.upload(video, tus_server.endpoint)  # it answers like a tus server: remembered
        tus_server.stop()
        with pytest.raises(RetriesExhaustedError, match="gave up after 5"):
            up.upload(video, tus_server.endpoint)
    assert len(sleeps) == 4
