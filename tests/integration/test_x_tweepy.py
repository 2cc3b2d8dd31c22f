"""tweepy against the X simulator on 127.0.0.1, over TLS (tweepy speaks only https).

``API.media_upload(chunked=True)`` uses the legacy v1.1 shape
(``/1.1/media/upload.json`` INIT/APPEND/FINALIZE/STATUS) on ``upload_host``; the
simulator serves it beside v2, on a ``trustme`` certificate that requests
trusts through ``REQUESTS_CA_BUNDLE``. ``Client.create_tweet`` hardcodes
``https://api.twitter.com``: a transport adapter on its session sends those
requests to the simulator instead.
"""

from __future__ import annotations

import hashlib
import random
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

tweepy = pytest.importorskip("tweepy")
trustme = pytest.importorskip("trustme")
import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from steadypost.testing import FakeClock, PlatformSimulator, SimulatorServer  # noqa: E402


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    sim = PlatformSimulator(clock=FakeClock())
    with SimulatorServer(sim, ssl_context=context) as server:
        yield server


class _ToSimulator(HTTPAdapter):
    """Sends what tweepy addresses to api.twitter.com to the simulator (same path)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        request.url = request.url.replace("https://api.twitter.com", self.base, 1)
        return super().send(request, **kwargs)


def test_tweepy_uploads_chunked_media_and_posts_it(tls_server: SimulatorServer,
                                                   tmp_path: Path) -> None:  # fmt: skip
    video = tmp_path / "clip.mp4"
    video.write_bytes(random.Random(3).randbytes(3 * 1024 * 1024 + 5))
    host = tls_server.url.removeprefix("https://")
    auth = tweepy.OAuth1UserHandler("consumer-key", "consumer-secret", "token", "token-secret")
    api = tweepy.API(auth, host=host, upload_host=host)
    media = api.media_upload(str(video), chunked=True, media_category="tweet_video")
    sim = tls_server.sim
    appends = [r for r in sim.requests if r.path == "/1.1/media/upload.json"
               and r.headers.get("content-type", "").startswith("multipart/")]  # fmt: skip
    assert len(appends) == 4  # tweepy's 1 MiB segments, the last of 5 bytes
    assert sim.x.media_bytes(media.media_id_string) == video.read_bytes()
    client = tweepy.Client(consumer_key="consumer-key", consumer_secret="consumer-secret",
                           access_token="token", access_token_secret="token-secret")
    client.session.mount("https://api.twitter.com", _ToSimulator(tls_server.url))
    answer = client.create_tweet(text="from tweepy", media_ids=[media.media_id])
    [post] = sim.x.posts()
    assert answer.data["id"] == post.post_id
    assert post.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
    assert all(r.origin.startswith("https://") for r in sim.requests)
