"""The simulator's post API: idempotent publishing, status checks, processing over fake time."""

from __future__ import annotations

import httpx
import pytest

from steadypost.testing import (
    DEFAULT_REJECT_REASON,
    FakeClock,
    PlatformSimulator,
    RejectMedia,
    SlowProcessing,
)

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


def _client(sim: PlatformSimulator, **headers: str) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url="https://platform.test",
                        headers=headers)


def _finished_upload(client: httpx.Client, data: bytes = b"video bytes") -> str:
    created = client.post("/files", content=data,
                          headers={**TUS, **OCTET, "Upload-Length": str(len(data))})
    assert created.headers["upload-offset"] == str(len(data))
    return created.headers["location"]


def _publish(client: httpx.Client, url: str, key: str | None = "post-1", **extra: str
             ) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/posts", json={"upload_url": url, **extra}, headers=headers)


def _status(client: httpx.Client, ref: str) -> dict[str, object]:
    response = client.get(f"/posts/{ref}/status")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_publish_then_status() -> None:
    sim = PlatformSimulator()
    with _client(sim) as client:
        url = _finished_upload(client)
        response = _publish(client, url, caption="hello")

        assert response.status_code == 202
        post_id = response.json()["post_id"]
        assert response.json() == {"post_id": post_id, "status": "processing"}
        for ref in ("post-1", post_id):
            assert _status(client, ref) == {
                "post_id": post_id, "status": "processed", "reason": None, "retryable": False}
    (post,) = sim.published
    assert post.request["caption"] == "hello"
    assert (post.upload_url, post.idempotency_key) == (url, "post-1")


def test_unknown_post_is_a_definite_not_found() -> None:
    with _client(PlatformSimulator()) as client:
        body = _status(client, "never-sent")
    assert body["status"] == "not_found"
    assert body["retryable"] is True


def test_same_idempotency_key_publishes_one_copy() -> None:
    sim = PlatformSimulator()
    with _client(sim) as client:
        url = _finished_upload(client)
        first = _publish(client, url)
        second = _publish(client, url)

    assert second.json()["post_id"] == first.json()["post_id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert sim.published_copies("post-1") == 1
    assert len(sim.published) == 1


def test_ignore_idempotency_publishes_a_second_copy() -> None:
    sim = PlatformSimulator(ignore_idempotency=True)
    with _client(sim) as client:
        url = _finished_upload(client)
        first = _publish(client, url)
        second = _publish(client, url)

    assert second.json()["post_id"] != first.json()["post_id"]
    assert sim.published_copies("post-1") == 2


def test_without_a_key_every_publish_is_a_copy() -> None:
    sim = PlatformSimulator()
    with _client(sim) as client:
        url = _finished_upload(client)
        _publish(client, url, key=None)
        _publish(client, url, key=None)
    assert len(sim.published) == 2


def test_processing_takes_clock_time() -> None:
    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, processing_s=120)
    with _client(sim) as client:
        _publish(client, _finished_upload(client))
        assert _status(client, "post-1")["status"] == "processing"
        clock.advance(119)
        assert _status(client, "post-1")["status"] == "processing"
        clock.advance(1)
        assert _status(client, "post-1")["status"] == "processed"
    (post,) = sim.posts
    assert post.ready_at - post.created_at == 120


def test_slow_processing_rule() -> None:
    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, faults=[SlowProcessing(seconds=1800, times=1)])
    with _client(sim) as client:
        url = _finished_upload(client)
        _publish(client, url, key="slow")
        _publish(client, url, key="fast")
        assert _status(client, "slow")["status"] == "processing"
        assert _status(client, "fast")["status"] == "processed"
        clock.advance(1800)
        assert _status(client, "slow")["status"] == "processed"
    # a post still processing already counts as published: it will go live on its own
    assert sim.published_copies("slow") == 1


def test_reject_media_fails_for_good() -> None:
    clock = FakeClock()
    sim = PlatformSimulator(clock=clock, processing_s=60, reject_media=True)
    with _client(sim) as client:
        url = _finished_upload(client)
        _publish(client, url)
        assert _status(client, "post-1")["status"] == "processing"
        clock.advance(60)
        assert _status(client, "post-1") == {
            "post_id": sim.posts[0].post_id, "status": "failed",
            "reason": DEFAULT_REJECT_REASON, "retryable": False}
        # the same key replays the failure instead of publishing again
        assert _publish(client, url).json()["status"] == "failed"
    assert sim.published_copies("post-1") == 0
    assert len(sim.posts) == 1


def test_retryable_failure_may_be_published_again_under_the_same_key() -> None:
    sim = PlatformSimulator(faults=[RejectMedia(reason="transcoder crashed", retryable=True,
                                                times=1)])
    with _client(sim) as client:
        url = _finished_upload(client)
        _publish(client, url)
        assert _status(client, "post-1")["reason"] == "transcoder crashed"
        assert _status(client, "post-1")["retryable"] is True
        _publish(client, url)
        assert _status(client, "post-1")["status"] == "processed"
    assert [p.status for p in sim.posts] == ["failed", "processed"]
    assert sim.published_copies("post-1") == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"not json", 400), (b"[]", 400), (b'{"upload_url": 5}', 400),
     (b'{"upload_url": "https://platform.test/files/nope"}', 422)],
)
def test_bad_publish_requests(body: bytes, status: int) -> None:
    sim = PlatformSimulator()
    with _client(sim) as client:
        response = client.post("/posts", content=body, headers={"Idempotency-Key": "k"})
    assert response.status_code == status
    assert sim.posts == []


def test_an_unfinished_upload_cannot_be_published() -> None:
    sim = PlatformSimulator()
    with _client(sim) as client:
        created = client.post("/files", headers={**TUS, "Upload-Length": "10"})
        assert _publish(client, created.headers["location"]).status_code == 422


def test_post_api_routes() -> None:
    with _client(PlatformSimulator()) as client:
        assert client.get("/posts").status_code == 405
        assert client.post("/posts/k/status").status_code == 405
        assert client.get("/posts/k/other").status_code == 404
        assert client.get("/elsewhere").status_code == 404


def test_required_authorization_covers_creation_and_posts_but_not_upload_urls() -> None:
    sim = PlatformSimulator(require_authorization="Bearer good")
    with _client(sim) as anonymous, _client(sim, Authorization="Bearer good") as client:
        assert anonymous.post("/files", headers={**TUS, "Upload-Length": "1"}).status_code == 401
        created = client.post("/files", headers={**TUS, "Upload-Length": "3"})
        url = created.headers["location"]
        patched = anonymous.patch(url, content=b"abc",
                                  headers={**TUS, **OCTET, "Upload-Offset": "0"})
        assert patched.status_code == 204
        assert _publish(anonymous, url).status_code == 401
        assert anonymous.get("/posts/post-1/status").status_code == 401
        assert _publish(client, url).status_code == 202

    patch = next(r for r in sim.requests if r.method == "PATCH")
    assert "authorization" not in patch.headers
    assert sim.requests[1].headers["authorization"] == "Bearer good"
