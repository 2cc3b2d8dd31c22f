"""Property-based: the Instagram and X flows keep their promises whatever the network does.

The honest server is the simulator itself, in process; hypothesis draws, for
every request, whether it is refused, lost before the work, lost after the
work (the answer never comes), or answered with an error status and any
``Retry-After`` instead. Each upload, then its publish step, runs through
:func:`steadypost.testing.pump` on a fake clock and must keep:

* no request after a failed exchange unless a wait (at least the floor) came first;
* no wait past the deadline; only a ``SteadypostError`` escapes;
* the body bytes within the wire bound;
* the publish (``media_publish``, ``POST /2/tweets``) sent at most once: after a
  lost or failed answer it is never sent again by the same run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_tus import counted_wire
from steadypost.errors import ConnectFailedError, ConnectionLostError, SteadypostError
from steadypost.flow import FileBody, Request, Response, RetryContext, WireMeter
from steadypost.models import FileIdentity, LocalFile, Post, PostState
from steadypost.platforms.base import Platform, UploadJob
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.instagram import InstagramPlatform
from steadypost.platforms.x import XPlatform
from steadypost.policy import RetryPolicy
from steadypost.testing import FakeClock, PlatformSimulator, ScriptedRun, pump
from steadypost.testing.messages import Drop, RequestHead

BASE = "https://api.test"
POLICY = RetryPolicy()
STATUSES = (400, 403, 429, 500, 502, 503, 504)
PUBLISH_PATHS = ("/media_publish", "/2/tweets")


class Drawn:
    """The simulator behind a network whose misfortunes hypothesis draws."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any], sim: PlatformSimulator,
                 honest: int) -> None:  # fmt: skip
        self.draw, self.sim, self.honest = draw, sim, honest
        self.failed: list[bool] = []

    def __call__(self, request: Request, body: bytes) -> Response:
        self.sim.clock.advance(self.draw(st.sampled_from((0.0, 0.0, 1.0, 40.0))))
        fate = self.draw(st.sampled_from(("ok",) * self.honest + (
            "refused", "lost", "lost-after", "status")))  # fmt: skip
        self.failed.append(fate != "ok")
        if fate == "refused":
            raise ConnectFailedError("refused (drawn)")
        if fate == "lost":
            raise ConnectionLostError("reset (drawn)")
        if fate == "status":
            retry_after = self.draw(st.sampled_from((None, "0", "30", "soon")))
            headers = {"retry-after": retry_after} if retry_after else {}
            return Response(self.draw(st.sampled_from(STATUSES)), headers, b"{}")
        parts = urlsplit(request.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head = RequestHead.build(method=request.method, target=target, origin=BASE,
                                 headers=request.headers)  # fmt: skip
        exchange = self.sim.exchange(head)
        exchange.feed(body)
        answer = exchange.finish()
        if fate == "lost-after" or isinstance(answer, Drop):
            raise ConnectionLostError("the answer was lost (drawn)")
        failed = not 200 <= answer.status < 300
        self.failed[-1] = failed
        headers = {k.lower(): v for k, v in answer.headers}
        return Response(answer.status, headers, answer.body, request.url)


def _run(platform: Platform, size: int, data: st.DataObject, sim: PlatformSimulator) -> None:
    clock = sim.clock
    content = random.Random(size).randbytes(size)
    deadline = clock.now() + (POLICY.deadline_s or 0)
    retry = RetryContext(policy=POLICY, clock=clock.now, rng=random.Random(2), deadline=deadline)
    file = LocalFile("/v/clip.mp4", size, 1)
    post = Post("p1", platform.name, BASE, file.path, FileIdentity(size, 1),
                PostState.UPLOADING, metadata={"caption": "c", "text": "t"})  # fmt: skip
    server = Drawn(data.draw, sim, data.draw(st.sampled_from((3, 8, 20)), label="honesty"))
    runs: list[ScriptedRun[Any]] = []
    upload = platform.begin(UploadJob(post=post, file=file, retry=retry, default_chunk_size=size))
    runs.append(pump(upload.run(), server, data=content, clock=clock, max_effects=20_000))
    if runs[0].error is None:
        extra: dict[str, Any] = dict(post.extra)
        for event in runs[0].events:  # what the journal would hold after the upload
            more = getattr(event, "extra", None)
            if isinstance(more, dict):
                extra.update(more)
        published = Post("p1", platform.name, BASE, file.path, FileIdentity(size, 1),
                         PostState.UPLOADING, metadata=post.metadata, extra=extra)  # fmt: skip
        flow = platform.publish(published, "")
        assert flow is not None
        runs.append(pump(flow, server, data=content, clock=clock, max_effects=20_000))
    exchanges = [e for r in runs for e in r.exchanges]
    for run in runs:
        assert run.error is None or isinstance(run.error, SteadypostError), repr(run.error)
    for i in range(1, len(exchanges)):
        if server.failed[i - 1]:
            assert exchanges[i].waited_s >= POLICY.floor_s, (
                f"request #{i} right after a failed one: {exchanges[i].request.url}")
    for exchange in exchanges:
        if exchange.waited_s:
            assert exchange.at <= deadline + 1e-6
    spent = sum(counted_wire(e.response, e.error, e.request.body.length)
                for e in runs[0].exchanges if isinstance(e.request.body, FileBody))  # fmt: skip
    # The documented bound: wire_factor x size + one chunk, the chunk the flow sends in
    # (X's segment size; Instagram sends the whole file at once).
    chunk = getattr(upload, "chunk", size)
    limit = WireMeter.for_file(POLICY, size, chunk).limit
    assert limit is None or spent <= limit, (spent, limit)
    publishes = [e for e in exchanges if e.request.url.split("?")[0].endswith(PUBLISH_PATHS)]
    assert len(publishes) <= 1 or all(e.response is not None and e.response.status in (429,)
                                      for e in publishes[:-1]), "a publish was sent twice"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_instagram_post_keeps_its_promises(data: st.DataObject) -> None:
    sim = PlatformSimulator(clock=FakeClock())
    auth = HeaderPolicy.for_endpoint(BASE, {"Authorization": "Bearer t"})
    platform = InstagramPlatform(auth, ig_user_id="17841400000000009", clock=sim.clock.now)
    _run(platform, data.draw(st.sampled_from((1, 5000, 70_001)), label="size"), data, sim)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_x_post_keeps_its_promises(data: st.DataObject) -> None:
    sim = PlatformSimulator(clock=FakeClock())
    auth = HeaderPolicy.for_endpoint(BASE, {"Authorization": "Bearer t"})
    platform = XPlatform(auth, chunk_size=4096, clock=sim.clock.now)
    _run(platform, data.draw(st.sampled_from((1, 4096, 10_000)), label="size"), data, sim)
