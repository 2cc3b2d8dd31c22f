"""Sync/async parity and cancellation: one flow, two drivers, the same requests."""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from fakes import ENDPOINT, Canned, FakeTime, ScriptedTus, seeded
from steadypost import (
    AsyncUploader,
    HostRegistry,
    Journal,
    Post,
    PostState,
    UploadCancelledError,
    Uploader,
)


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


# --- every journaled method: the same script, sync and async, the same journal -----------


def _journaled_script() -> ScriptedTus:
    tus = ScriptedTus()
    tus.queue("PATCH", Canned(503, {"Retry-After": "2"}))  # post A: a wait, then through
    return tus


def _videos(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in "ABCD":
        path = tmp_path / f"{name}.mp4"
        path.write_bytes(bytes([ord(name)]) * (20_000 + ord(name)))
        out[name] = path
    return out


def _lose_the_last_answer(tus: ScriptedTus, size: int) -> None:
    """B's last PATCH is stored, then its answer is lost and the server stops answering
    (every HEAD times out): B ends unconfirmed, for its check to settle."""
    real = tus._patch

    def patch(request: httpx.Request) -> httpx.Response:
        response = real(request)
        if int(response.headers.get("Upload-Offset", 0)) == size:
            tus._head = lost  # type: ignore[method-assign]
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    tus._patch = patch  # type: ignore[method-assign]


def _answer_again(tus: ScriptedTus) -> None:
    tus._patch = ScriptedTus._patch.__get__(tus)  # type: ignore[method-assign]
    tus._head = ScriptedTus._head.__get__(tus)  # type: ignore[method-assign]


def _dump(journal: Journal) -> list[tuple[object, ...]]:
    return [
        (p.post_id, p.state, p.offset, p.attempts, p.last_error, p.identity.sha256, p.bytes_sent,
         p.sent_to, p.upload_url, p.next_attempt_ts,
         [(e.kind, e.data.get("to"), e.data.get("status")) for e in journal.events(p.post_id)])
        for p in journal.list()
    ]  # fmt: skip


def _sync_run(tmp_path: Path, videos: dict[str, Path]) -> tuple[object, ...]:
    tus, ft = _journaled_script(), FakeTime()
    journal = Journal(tmp_path / "sync.sqlite3", clock=ft.clock)
    with Uploader(client=httpx.Client(transport=httpx.MockTransport(tus)), journal=journal,
                  sleep=ft.sleep, clock=ft.clock, rng=seeded(), chunk_size=8000,
                  hosts=HostRegistry(rng=seeded())) as up:  # fmt: skip
        a = up.post(videos["A"], ENDPOINT, post_id="A")
        up.add(videos["B"], ENDPOINT, post_id="B")
        _lose_the_last_answer(tus, videos["B"].stat().st_size)
        b = up.upload_post("B")
        _answer_again(tus)
        ft.now += 600  # the host's breaker (opened by B's timeouts) lets a probe through
        up.add(videos["C"], ENDPOINT, post_id="C")
        resumed = up.resume_pending()
        checked = up.verify_due(all=True)
        up.add(videos["D"], ENDPOINT, post_id="D")
        d = up.cancel_post("D")
        results = (a, b, resumed, checked, d)
    dump = _dump(journal)
    journal.close()
    return results, dump, trace(tus), ft.sleeps


async def _async_run(tmp_path: Path, videos: dict[str, Path]) -> tuple[object, ...]:
    tus, ft = _journaled_script(), FakeTime()
    journal = Journal(tmp_path / "async.sqlite3", clock=ft.clock)
    async with AsyncUploader(client=httpx.AsyncClient(transport=httpx.MockTransport(tus)),
                             journal=journal, sleep=ft.asleep, clock=ft.clock, rng=seeded(),
                             chunk_size=8000, hosts=HostRegistry(rng=seeded())) as up:  # fmt: skip
        a = await up.post(videos["A"], ENDPOINT, post_id="A")
        up.add(videos["B"], ENDPOINT, post_id="B")
        _lose_the_last_answer(tus, videos["B"].stat().st_size)
        b = await up.upload_post("B")
        _answer_again(tus)
        ft.now += 600  # the host's breaker (opened by B's timeouts) lets a probe through
        up.add(videos["C"], ENDPOINT, post_id="C")
        resumed = await up.resume_pending()
        checked = await up.verify_due(all=True)
        up.add(videos["D"], ENDPOINT, post_id="D")
        d = await up.cancel_post("D")
        results = (a, b, resumed, checked, d)
    dump = _dump(journal)
    journal.close()
    return results, dump, trace(tus), ft.sleeps


def _without_owners(value: object) -> object:
    """Posts as returned, minus what names the uploader (its random lease owner)."""
    if isinstance(value, Post):
        return replace(value, lease_owner=None)
    if isinstance(value, list | tuple):
        return [_without_owners(v) for v in value]
    return value


async def test_every_journaled_method_does_the_same_sync_and_async(tmp_path: Path) -> None:
    videos = _videos(tmp_path)
    sync_results, sync_dump, sync_trace, sync_sleeps = _sync_run(tmp_path, videos)
    async_results, async_dump, async_trace, async_sleeps = await _async_run(tmp_path, videos)
    assert sync_trace == async_trace
    assert sync_sleeps == async_sleeps
    assert sync_dump == async_dump
    assert _without_owners(sync_results) == _without_owners(async_results)
    a, b, resumed, checked, d = sync_results  # type: ignore[misc]
    assert (a.state, b.state, d.state) == (
        PostState.CONFIRMED, PostState.UNCONFIRMED, PostState.CANCELLED
    )  # fmt: skip
    assert [p.state for p in resumed] == [PostState.CONFIRMED]  # C
    assert [p.state for p in checked] == [PostState.CONFIRMED]  # B, settled by its check


def test_both_uploaders_offer_the_same_methods() -> None:
    def public(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(getattr(cls, name)).parameters)
            for name in dir(cls)
            if not name.startswith("_") and callable(getattr(cls, name))
        }

    sync_methods, async_methods = public(Uploader), public(AsyncUploader)
    sync_methods.pop("close")
    async_methods.pop("aclose")
    assert sync_methods == async_methods
    for name in async_methods:
        if name not in {"add", "add_group", "add_or_join", "cancel", "cancelled", "guard",
                        "platform", "retry_ctx", "server_info", "observer", "tus"}:  # fmt: skip
            assert inspect.iscoroutinefunction(getattr(AsyncUploader, name)), name
