"""Issue 12's measured failures, each pinned through the real uploader and driver.

The server is a :class:`fakes.ScriptedTus` behind ``httpx.MockTransport`` with one
misbehaviour; the uploader is the real one (journal, host guard, pump, body reader)
on injected time. Every test here failed before the fix it names; the property-based
tests (``test_tus_properties.py``) then draw thousands of such servers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fakes import ENDPOINT, Canned, FakeTime, ScriptedTus, seeded
from steadypost import (
    HostRegistry,
    Journal,
    PostOptions,
    PostState,
    RetryPolicy,
    Uploader,
)
from steadypost.origins import origin_of

KiB = 1024
CHUNK = 4 * KiB
POLICY = RetryPolicy()
ORIGIN = origin_of(ENDPOINT)


class Twisted(ScriptedTus):
    """A ScriptedTus whose answers one test bends, recording when each request came."""

    def __init__(self, ft: FakeTime, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.ft = ft
        self.times: list[float] = []
        self.patch_answer: Callable[[httpx.Request, int], httpx.Response] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.ft.now)
        if len(self.requests) > 500:
            raise AssertionError("the client floods: over 500 requests")
        return super().__call__(request)

    def _patch(self, request: httpx.Request) -> httpx.Response:
        if self.patch_answer is None:
            return super()._patch(request)
        return self.patch_answer(request, len(self.uploads[str(request.url)]))

    def gaps(self, method: str) -> list[float]:
        """Seconds between each request of ``method`` and the request before it."""
        return [
            self.times[i] - self.times[i - 1]
            for i, r in enumerate(self.requests)
            if i and r.method == method
        ]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(10 * CHUNK + 123))
    return path


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def tus(ft: FakeTime) -> Twisted:
    return Twisted(ft)


@pytest.fixture
def hosts() -> HostRegistry:
    return HostRegistry(rng=seeded())


@pytest.fixture
def uploader(
    tmp_path: Path, ft: FakeTime, tus: Twisted, hosts: HostRegistry
) -> Iterator[Uploader]:
    client = httpx.Client(transport=httpx.MockTransport(tus))
    journal = Journal(tmp_path / "journal.sqlite3", clock=ft.clock)
    up = Uploader(client=client, journal=journal, sleep=ft.sleep, clock=ft.clock, rng=seeded(),
                  chunk_size=CHUNK, hosts=hosts, headers={"Authorization": "Bearer t"})  # fmt: skip
    yield up
    up.close()
    journal.close()
    client.close()


def same_offset(request: httpx.Request, held: int) -> httpx.Response:
    """Issue 12 item 1: 204 with the offset the PATCH was sent at; the bytes are dropped."""
    return httpx.Response(204, headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(held)})


def test_204_with_the_same_offset_is_a_failed_attempt_not_a_flood(
    uploader: Uploader, tus: Twisted, hosts: HostRegistry, video: Path
) -> None:
    tus.patch_answer = same_offset
    post = uploader.post(video, ENDPOINT)
    patches = [r for r in tus.requests if r.method == "PATCH"]
    assert len(patches) == POLICY.max_stalls  # before: thousands, back to back
    assert all(gap >= POLICY.floor_s for gap in tus.gaps("PATCH")[1:])
    assert post.state is PostState.WAITING
    assert "offset does not move" in (post.last_error or "")
    # The breaker counted every one of them as a failure, not as a success.
    assert hosts.state(ORIGIN).failures == POLICY.max_stalls


def test_one_byte_at_a_time_does_not_reset_the_backoff(
    uploader: Uploader, tus: Twisted, video: Path
) -> None:
    def one_byte(request: httpx.Request, held: int) -> httpx.Response:
        tus.uploads[str(request.url)].extend(request.content[:1])
        return same_offset(request, held + 1)

    tus.patch_answer = one_byte
    post = uploader.post(video, ENDPOINT)
    assert len([r for r in tus.requests if r.method == "PATCH"]) == POLICY.max_stalls
    assert all(gap >= POLICY.floor_s for gap in tus.gaps("PATCH")[1:])
    assert post.state is PostState.WAITING
    assert post.offset == POLICY.max_stalls  # what it really holds is journaled


def test_a_head_that_creeps_after_each_500_is_one_retry_cycle(
    uploader: Uploader, tus: Twisted, video: Path
) -> None:
    def fail_but_keep_a_byte(request: httpx.Request, held: int) -> httpx.Response:
        tus.uploads[str(request.url)].extend(request.content[:1])
        return httpx.Response(500, headers={"Tus-Resumable": "1.0.0"})

    tus.patch_answer = fail_but_keep_a_byte
    post = uploader.post(video, ENDPOINT)
    patches = [r for r in tus.requests if r.method == "PATCH"]
    assert len(patches) == POLICY.max_attempts  # one cycle: 1 byte is not progress
    heads = tus.gaps("HEAD")
    assert len(heads) == POLICY.max_attempts - 1
    assert all(gap >= POLICY.floor_s for gap in heads)  # each HEAD after a wait
    assert post.state in (PostState.WAITING, PostState.UNCONFIRMED)


@pytest.mark.parametrize("value", ["²", "١٢", "9" * 5000, "-3", "12abc", ""])
def test_a_malformed_upload_offset_is_a_protocol_error_naming_it(
    uploader: Uploader, tus: Twisted, video: Path, value: str
) -> None:
    tus.patch_answer = lambda request, held: httpx.Response(  # bytes, as on the wire
        204, headers=[(b"Tus-Resumable", b"1.0.0"), (b"Upload-Offset", value.encode())]
    )
    post = uploader.post(video, ENDPOINT)
    assert post.state is PostState.WAITING  # never an unexpected ValueError
    assert "Upload-Offset is not a number" in (post.last_error or "")


def test_retry_after_with_400_nines_waits_the_capped_time(
    uploader: Uploader, tus: Twisted, ft: FakeTime, hosts: HostRegistry, video: Path
) -> None:
    tus.queue("PATCH", Canned(503, {"Retry-After": "9" * 400}))
    started = ft.now
    post = uploader.post(video, ENDPOINT)
    assert ft.sleeps[0] == POLICY.retry_after_cap_s  # before: OverflowError, exit 1
    # The guard read it too (without overflow): nothing went to the host in that hour.
    resumed = [t for t, r in zip(tus.times, tus.requests, strict=True) if t > started]
    assert resumed
    assert min(resumed) >= started + POLICY.retry_after_cap_s
    assert hosts.state(ORIGIN).not_before <= started + POLICY.retry_after_cap_s
    assert post.state is PostState.CONFIRMED


def test_userinfo_in_a_location_is_never_sent_nor_journaled(
    uploader: Uploader, tus: Twisted, video: Path
) -> None:
    tus.location_base = "https://mallory:hunter2@up.example.com/files/"
    post = uploader.post(video, ENDPOINT)
    assert post.state is PostState.CONFIRMED
    assert post.upload_url is not None
    assert "@" not in post.upload_url
    for request in tus.requests:
        assert "@" not in str(request.url)
        assert request.headers.get("authorization") in (None, "Bearer t")  # never Basic


def test_a_head_claiming_bytes_never_sent_is_a_protocol_error(
    uploader: Uploader, tus: Twisted, video: Path
) -> None:
    size = video.stat().st_size

    def fail_then_lie(request: httpx.Request, held: int) -> httpx.Response:
        tus.lengths[str(request.url)] = size
        tus.uploads[str(request.url)] = bytearray(size)  # HEAD will claim every byte
        return httpx.Response(500, headers={"Tus-Resumable": "1.0.0"})

    tus.patch_answer = fail_then_lie
    post = uploader.post(video, ENDPOINT)
    assert post.state is not PostState.CONFIRMED  # before: confirmed on the lie
    assert "were ever sent to it" in (post.last_error or "")


def test_a_file_swapped_by_a_rename_mid_upload_is_never_a_mix(
    uploader: Uploader, tus: Twisted, video: Path
) -> None:
    original = video.read_bytes()
    st = video.stat()
    swapped = {"done": False}

    def swap_after_first_chunk(progress: object) -> None:
        if not swapped["done"] and getattr(progress, "acknowledged", 0) >= CHUNK:
            swapped["done"] = True
            other = video.with_name("other.mp4")
            other.write_bytes(os.urandom(len(original)))
            os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime
            os.replace(other, video)

    post = uploader.post(video, ENDPOINT, on_progress=swap_after_first_chunk)
    assert swapped["done"]
    # Every byte came from the one descriptor opened at the start (the old file), and
    # the rename is seen on it (its link count and ctime change): the post fails with the
    # reason instead of being confirmed as a mix of two versions, as it was before.
    assert post.state is PostState.FAILED
    assert "changed while it was uploaded" in (post.last_error or "")
    assert post.upload_url is not None
    stored = bytes(tus.uploads[post.upload_url])
    assert original.startswith(stored)  # what did go out is the old version only


def test_an_edit_with_the_mtime_restored_is_caught_before_it_is_confirmed(
    uploader: Uploader, tus: Twisted, video: Path
) -> None:
    st = video.stat()
    edited = {"done": False}

    def edit_in_place(progress: object) -> None:
        if not edited["done"] and getattr(progress, "acknowledged", 0) >= CHUNK:
            edited["done"] = True
            with video.open("r+b") as f:
                f.seek(st.st_size - 10)
                f.write(b"0123456789")
            os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))

    post = uploader.post(video, ENDPOINT, on_progress=edit_in_place)
    assert edited["done"]
    assert post.state is PostState.FAILED  # before: confirmed with a SHA-256 of other bytes
    assert "changed while it was uploaded" in (post.last_error or "")


def test_an_unexpected_bug_backs_off_and_is_bounded(
    uploader: Uploader, ft: FakeTime, video: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    def broken(self: object, *args: object) -> object:
        raise ValueError("a bug")

    monkeypatch.setattr("steadypost.platforms.tus.TusUpload.head", broken)
    monkeypatch.setattr("steadypost.platforms.tus.TusUpload.patch", broken)
    caplog.set_level(logging.ERROR, logger="steadypost")
    post = uploader.add(video, ENDPOINT)
    states = []
    for _ in range(PostOptions().max_protocol_failures):
        post = uploader.upload_post(post.post_id)
        states.append(post.state)
        if post.state is PostState.WAITING:
            assert post.next_attempt_at is not None
            assert post.next_attempt_ts >= ft.now + POLICY.floor_s  # never due again at once
            ft.now = post.next_attempt_ts
    assert states[:-1] == [PostState.WAITING] * (len(states) - 1)
    assert states[-1] is PostState.FAILED
    assert "steadypost failed unexpectedly: ValueError: a bug" in (post.last_error or "")
    assert any("unexpected ValueError" in r.getMessage() for r in caplog.records)


def test_a_cancel_while_uploading_wins_quietly(
    uploader: Uploader, video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    post = uploader.add(video, ENDPOINT)

    def cancel_midway(progress: object) -> None:
        if getattr(progress, "acknowledged", 0) >= CHUNK:
            current = uploader.journal.get(post.post_id)
            if current.state is PostState.UPLOADING:  # what `steadypost cancel` does
                uploader.journal.transition(post.post_id, PostState.CANCELLED, event={"by": "user"})

    caplog.set_level(logging.INFO, logger="steadypost")
    ended = uploader.upload_post(post.post_id, on_progress=cancel_midway)
    assert ended.state is PostState.CANCELLED
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
