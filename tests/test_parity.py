"""Sync/async parity and cancellation: one flow, two drivers, the same requests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from fakes import ENDPOINT, Canned, FakeTime, ScriptedTus, seeded
from steadypost import AsyncUploader, UploadCancelledError, Uploader


def scripted() -> ScriptedTus:
    tus = ScriptedTus(extensions="creation,checksum", checksum_algorithms="sha1")
    tus.queue(
        "PATCH",
        Canned(503, {"Retry-After": "3"}),
        Canned(keep_body=100, error=httpx.ReadError("reset")),
    )
    tus.queue("HEAD", Canned(429))
    return tus


def trace(tus: ScriptedTus) -> list[tuple[str, str, str | None, str | None]]:
    return [
        (r.method, str(r.url), r.headers.get("Upload-Offset"), r.headers.get("Upload-Checksum"))
        for r in tus.requests
    ]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "v.mov"
    path.write_bytes(bytes(range(251)) * 100)
    return path


async def test_sync_and_async_send_the_same_requests(video: Path) -> None:
    sync_tus, sync_time = scripted(), FakeTime()
    with Uploader(
        client=httpx.Client(transport=httpx.MockTransport(sync_tus)),
        sleep=sync_time.sleep,
        clock=sync_time.clock,
        rng=seeded(),
        chunk_size=8000,
    ) as up:
        sync_result = up.upload(video, ENDPOINT)

    async_tus, async_time = scripted(), FakeTime()
    async with AsyncUploader(
        client=httpx.AsyncClient(transport=httpx.MockTransport(async_tus)),
        sleep=async_time.asleep,
        clock=async_time.clock,
        rng=seeded(),
        chunk_size=8000,
    ) as aup:
        async_result = await aup.upload(video, ENDPOINT)

    assert trace(sync_tus) == trace(async_tus)
    assert sync_time.sleeps == async_time.sleeps
    assert len(sync_time.sleeps) == 3
    assert sync_result == async_result
    digest = hashlib.sha256(video.read_bytes()).hexdigest()
    assert sync_result.sha256 == digest == sync_tus.sha256(sync_result.upload_url)


def test_cancel_cuts_a_wait_short_and_keeps_the_upload_resumable(video: Path) -> None:
    tus = ScriptedTus()
    tus.queue("PATCH", Canned(204, {"Upload-Offset": "8000"}), Canned(503, {"Retry-After": "600"}))
    tus.uploads[ENDPOINT + "u1"] = bytearray()
    up = Uploader(client=httpx.Client(transport=httpx.MockTransport(tus)), chunk_size=8000)

    def cancel_on_wait(progress: object) -> None:
        if getattr(progress, "wait_s", 0):
            up.cancel()

    with up, pytest.raises(UploadCancelledError):
        up.upload(video, ENDPOINT, on_progress=cancel_on_wait)
    assert tus.methods()[-1] == "PATCH"  # nothing sent after the cancel


async def test_async_cancel(video: Path) -> None:
    tus = ScriptedTus()
    tus.queue("PATCH", Canned(503, {"Retry-After": "600"}))
    up = AsyncUploader(
        client=httpx.AsyncClient(transport=httpx.MockTransport(tus)), chunk_size=8000
    )

    def cancel_on_wait(progress: object) -> None:
        if getattr(progress, "wait_s", 0):
            up.cancel()

    async with up:
        with pytest.raises(UploadCancelledError):
            await up.upload(video, ENDPOINT, on_progress=cancel_on_wait)
