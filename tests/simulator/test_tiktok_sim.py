"""The TikTok-shaped simulator answers as TikTok's documentation describes (raw HTTP)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from steadypost.testing import (
    ChunkAnswers,
    FakeClock,
    Outage,
    PlatformSimulator,
    RejectMedia,
    ResetMidChunk,
    SimulatorServer,
    SlowProcessing,
    TikTokConfig,
)

TOKEN = "act.sim-token"
INIT = "/v2/post/publish/video/init/"
INBOX = "/v2/post/publish/inbox/video/init/"
STATUS = "/v2/post/publish/status/fetch/"
#: Tiny chunk rules, so tests move kilobytes; the real limits are the defaults.
SMALL = TikTokConfig(min_chunk=100, max_chunk=1_000, max_final_chunk=2_000, max_chunks=10)


def client(sim: PlatformSimulator, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url="https://open.tiktokapis.com",
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def init(c: httpx.Client, size: int, chunk: int, count: int, *, path: str = INIT,
         privacy: str = "SELF_ONLY") -> httpx.Response:  # fmt: skip
    body: dict[str, Any] = {"source_info": {"source": "FILE_UPLOAD", "video_size": size,
                                            "chunk_size": chunk, "total_chunk_count": count}}
    if path == INIT:
        body["post_info"] = {"privacy_level": privacy, "title": "t"}
    return c.post(path, json=body)


def put(c: httpx.Client, url: str, data: bytes, first: int, total: int,
        content_type: str = "video/mp4") -> httpx.Response:  # fmt: skip
    last = first + len(data) - 1
    headers = {"Content-Type": content_type, "Content-Range": f"bytes {first}-{last}/{total}"}
    return c.put(url, content=data, headers=headers)


def status(c: httpx.Client, publish_id: str) -> dict[str, Any]:
    answer = c.post(STATUS, json={"publish_id": publish_id})
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()["data"]
    return data


def code(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


def test_the_documented_example_is_accepted_and_broken_plans_are_not() -> None:
    sim = PlatformSimulator()
    with client(sim) as c:
        ok = init(c, 50_000_123, 10_000_000, 5)
        assert ok.status_code == 200
        assert ok.json()["error"]["code"] == "ok"
        assert ok.json()["data"]["publish_id"]
        for size, chunk, count in [(50_000_123, 10_000_000, 6),  # count must round down
                                   (70_000_000, 70_000_000, 1),  # over 64 MB: several chunks
                                   (20_000_000, 1_000_000, 20),  # chunks under 5 MB
                                   (3_000_000, 1_000_000, 3)]:  # under 5 MB: whole
            answer = init(c, size, chunk, count)
            assert (answer.status_code, code(answer)) == (400, "invalid_params")


def test_chunks_go_in_order_with_a_range_and_a_video_type() -> None:
    sim = PlatformSimulator(tiktok=SMALL)
    data = bytes(range(256)) * 10  # 2,560 bytes: 5 chunks of 500, the last 560
    with client(sim) as c:
        answer = init(c, len(data), 500, 5).json()["data"]
        url, pid = answer["upload_url"], answer["publish_id"]
        assert not url.startswith("https://open.tiktokapis.com")  # another origin
        assert put(c, url, data[500:1000], 500, len(data)).status_code == 400  # out of order
        assert put(c, url, data[:500], 0, len(data), "video/avi").status_code == 415
        assert put(c, url, data[:400], 0, len(data)).status_code == 400  # not a planned chunk
        answers = [put(c, url, data[i:i + 500], i, len(data)).status_code for i in (0, 500, 1000)]
        assert answers == [206, 206, 206]
        assert put(c, url, data[:500], 0, len(data)).status_code == 206  # again: no harm
        assert status(c, pid) == {"status": "PROCESSING_UPLOAD", "uploaded_bytes": 1500,
                                  "publicaly_available_post_id": []}  # fmt: skip
        assert put(c, url, data[1500:2000], 1500, len(data)).status_code == 206
        assert put(c, url, data[2000:], 2000, len(data)).status_code == 201
    [info] = sim.tiktok.published()
    assert sim.tiktok.video_bytes(pid) == data
    assert info.status == "PUBLISH_COMPLETE"


def test_status_goes_through_processing_to_its_end() -> None:
    clock = FakeClock()
    rejected = RejectMedia(reason="duration_check_failed", start=clock.now() + 1)
    sim = PlatformSimulator(clock=clock, tiktok=SMALL,
                            faults=[SlowProcessing(seconds=30, times=1), rejected])  # fmt: skip
    with client(sim) as c:
        direct = init(c, 150, 150, 1).json()["data"]
        put(c, direct["upload_url"], b"x" * 150, 0, 150)
        assert status(c, direct["publish_id"])["status"] == "PROCESSING_UPLOAD"
        clock.advance(30)
        assert status(c, direct["publish_id"])["status"] == "PUBLISH_COMPLETE"
        inbox = init(c, 150, 150, 1, path=INBOX).json()["data"]
        put(c, inbox["upload_url"], b"y" * 150, 0, 150)
        failed = status(c, inbox["publish_id"])
    assert failed["status"] == "FAILED"
    assert failed["fail_reason"] == "duration_check_failed"
    [ok] = sim.tiktok.published()
    assert ok.publish_id == direct["publish_id"]


def _small(**more: Any) -> TikTokConfig:
    return TikTokConfig(min_chunk=100, max_chunk=1_000, max_final_chunk=2_000, max_chunks=10,
                        **more)  # fmt: skip


def test_unknown_tokens_and_missing_scopes_are_401() -> None:
    sim = PlatformSimulator(tiktok=_small(tokens=frozenset({TOKEN}),
                                          scopes=frozenset({"video.upload"})))  # fmt: skip
    with client(sim) as c, client(sim, "stolen") as other:
        refused = init(other, 150, 150, 1, path=INBOX)
        assert (refused.status_code, code(refused)) == (401, "access_token_invalid")
        direct = init(c, 150, 150, 1)  # Direct Post needs video.publish
        assert (direct.status_code, code(direct)) == (401, "scope_not_authorized")
        assert init(c, 150, 150, 1, path=INBOX).status_code == 200


def test_six_inits_and_thirty_status_requests_a_minute_per_token() -> None:
    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, tiktok=_small(max_pending_shares=100))
    with client(sim) as c, client(sim, "another-account") as other:
        answers = [init(c, 150, 150, 1).status_code for _ in range(7)]
        assert answers == [200] * 6 + [429]
        assert code(init(c, 150, 150, 1)) == "rate_limit_exceeded"
        assert init(other, 150, 150, 1).status_code == 200  # counted per token
        clock.advance(60)
        assert init(c, 150, 150, 1).status_code == 200
        pid = sim.tiktok.publishes()[0].publish_id
        checks = [c.post(STATUS, json={"publish_id": pid}).status_code for _ in range(31)]
    assert checks == [200] * 30 + [429]


def test_too_many_pending_shares_is_403_until_one_finishes() -> None:
    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, tiktok=_small(max_pending_shares=2))
    with client(sim) as c:
        first = init(c, 150, 150, 1).json()["data"]
        assert init(c, 150, 150, 1).status_code == 200
        busy = init(c, 150, 150, 1)
        assert (busy.status_code, code(busy)) == (403, "spam_risk_too_many_pending_share")
        put(c, first["upload_url"], b"x" * 150, 0, 150)  # published: no longer pending
        clock.advance(60)
        assert init(c, 150, 150, 1).status_code == 200


def test_expired_upload_urls_are_refused_and_counted() -> None:
    clock = FakeClock()
    answers = ChunkAnswers(partial=200, complete=200, expired=403)  # undocumented: configurable
    sim = PlatformSimulator(clock=clock, tiktok=_small(chunk_answers=answers))
    with client(sim) as c:
        url = init(c, 300, 150, 2).json()["data"]["upload_url"]
        assert put(c, url, b"a" * 150, 0, 300).status_code == 200
        clock.advance(3600)
        assert put(c, url, b"b" * 150, 150, 300).status_code == 403
    [info] = sim.tiktok.publishes()
    assert info.late_puts == 1
    assert info.received_bytes == 150


def test_faults_apply_to_tiktok_endpoints() -> None:
    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, tiktok=SMALL, faults=[
        Outage(clock.now(), clock.now() + 60, path="/v2/"),
        ResetMidChunk(after_bytes=100, methods={"PUT"})])  # fmt: skip
    with client(sim) as c:
        assert init(c, 300, 150, 2).status_code == 503
        clock.advance(60)
        answer = init(c, 300, 150, 2).json()["data"]
        with pytest.raises(httpx.ReadError):
            put(c, answer["upload_url"], b"a" * 150, 0, 300)
        assert status(c, answer["publish_id"])["uploaded_bytes"] == 0  # a broken chunk is dropped
        assert put(c, answer["upload_url"], b"a" * 150, 0, 300).status_code == 206


def test_tiktok_is_served_on_127_0_0_1_too() -> None:
    sim = PlatformSimulator(tiktok=SMALL)
    with SimulatorServer(sim) as server, httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as c:  # fmt: skip
        answer = c.post(INIT, content=json.dumps({
            "post_info": {"privacy_level": "SELF_ONLY"},
            "source_info": {"source": "FILE_UPLOAD", "video_size": 150, "chunk_size": 150,
                            "total_chunk_count": 1}}))  # fmt: skip
        url = answer.json()["data"]["upload_url"]
        assert url.startswith("http://localhost:")  # the other loopback name: another origin
        done = c.put(url.replace("localhost", "127.0.0.1"), content=b"z" * 150,
                     headers={"Content-Type": "video/webm", "Content-Range": "bytes 0-149/150"})
    assert done.status_code == 201
    assert len(sim.tiktok.published()) == 1
