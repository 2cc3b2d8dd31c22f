"""Property-based: the YouTube upload flow keeps its promises whatever the server answers.

hypothesis draws each answer of a hostile YouTube (:class:`DrawnYouTube`):
error statuses with any ``Retry-After``, ``308`` without progress, malformed or
lying ``Range`` headers, lapsed sessions, lost answers before or after the
work, a final answer before the last byte. The flow runs on a fake clock
through :func:`steadypost.testing.pump`. Each script must keep DESIGN.md's
invariants:

* no request without progress unless a wait (at least the policy's floor) came first
  (a valid ``308`` to an offset probe allows the one chunk it enables at once);
* no wait ends past the deadline; only a ``SteadypostError`` escapes;
* the body bytes stay within the wire bound;
* at most one session ever completes (two would be two videos), and a finished
  upload means YouTube holds exactly the file's bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_tus import counted_wire
from steadypost.errors import ConnectFailedError, ConnectionLostError, SteadypostError
from steadypost.flow import FileBody, Request, Response, RetryContext, WireMeter
from steadypost.models import FileIdentity, LocalFile, Post, PostState
from steadypost.platforms.base import UploadJob
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.youtube import YouTubePlatform
from steadypost.policy import RetryPolicy
from steadypost.testing import FakeClock, pump

ORIGIN = "https://www.googleapis.com"
G = 256 * 1024
POLICY = RetryPolicy()
STATUSES = (400, 401, 403, 404, 410, 429, 500, 502, 503, 504)
RETRY_AFTERS = (None, "0", "7", "9" * 300, "soon", "Wed, 21 Oct 2015 07:28:00 GMT")
RANGES = ("bytes=0-", "bytes=5-9", "bytes=0-²", "bytes=0-" + "9" * 40, "items=0-1")


@dataclass
class Session:
    size: int
    held: int = 0
    offered: int = 0
    done: bool = False
    lapsed: bool = False


@dataclass
class DrawnYouTube:
    draw: Callable[[st.SearchStrategy[Any]], Any]
    clock: FakeClock
    size: int
    data: bytes
    honest: int
    sessions: dict[str, Session] = field(default_factory=dict)
    verdicts: list[str] = field(default_factory=list)
    mark: int = 0

    def __call__(self, request: Request, body: bytes) -> Response:
        self.clock.advance(self.draw(st.sampled_from((0.0, 0.0, 0.5, 30.0))))
        sid = parse_qs(urlsplit(request.url).query).get("upload_id", [""])[0]
        if isinstance(request.body, FileBody) and sid in self.sessions:  # offered, even if lost
            self.sessions[sid].offered = max(self.sessions[sid].offered, request.body.end)
        fate = self.draw(st.sampled_from(("ok",) * self.honest + ("refused", "lost", "lost-after")))
        if fate == "refused":
            self.verdicts.append("bad")
            raise ConnectFailedError("refused (drawn)")
        if fate == "lost":
            self.verdicts.append("bad")
            raise ConnectionLostError("reset (drawn)")
        response, verdict = (self._initiate(request) if request.method == "POST"
                             else self._put(request, body))  # fmt: skip
        if fate == "lost-after":
            self.verdicts.append("bad")
            raise ConnectionLostError("the answer was lost (drawn)")
        self.verdicts.append(verdict)
        return response

    def _error(self) -> Response:
        headers = {}
        retry_after = self.draw(st.sampled_from(RETRY_AFTERS))
        if retry_after is not None:
            headers["retry-after"] = retry_after
        return Response(self.draw(st.sampled_from(STATUSES)), headers, b"<html>no</html>")

    def _initiate(self, request: Request) -> tuple[Response, str]:
        kind = self.draw(st.sampled_from(("ok",) * self.honest + ("error", "no-location")))
        if kind == "error":
            return self._error(), "bad"
        if kind == "no-location":
            return Response(200), "bad"
        sid = f"s{len(self.sessions) + 1}"
        self.sessions[sid] = Session(int(request.header("x-upload-content-length") or 0))
        self.mark = 0
        return Response(200, {"location": f"{ORIGIN}/upload/youtube/v3/videos?upload_id={sid}"}), \
            "progress"  # fmt: skip

    def _put(self, request: Request, body: bytes) -> tuple[Response, str]:
        sid = parse_qs(urlsplit(request.url).query).get("upload_id", [""])[0]
        s = self.sessions.get(sid)
        if s is None or s.lapsed:
            return Response(404), "bad"
        if s.done:
            return Response(201, {}, b'{"id": "v-' + sid.encode() + b'"}'), "progress"
        kind = self.draw(st.sampled_from(("ok",) * self.honest + (
            "error", "lapse", "stall", "garbage-range", "lie", "early-final")))  # fmt: skip
        if kind == "error":
            return self._error(), "bad"
        if kind == "lapse":
            s.lapsed = True
            return Response(self.draw(st.sampled_from((404, 410)))), "bad"
        if kind == "garbage-range":
            return Response(308, {"range": self.draw(st.sampled_from(RANGES))}), "bad"
        # Lies a client can catch: an end, or bytes held, before the last byte was offered.
        if kind == "early-final" and s.offered < s.size:
            return Response(201, {}, b'{"id": "early"}'), "bad"
        if kind == "lie" and s.offered < s.size:
            return Response(308, {"range": f"bytes=0-{s.size - 1}"}), "bad"
        if isinstance(request.body, FileBody) and kind != "stall":
            first = request.body.offset
            if first <= s.held:
                s.held = max(s.held, first + len(body))
        probe = not isinstance(request.body, FileBody)
        if s.held >= s.size:
            s.done = True
            return Response(201, {}, b'{"id": "v-' + sid.encode() + b'"}'), "progress"
        moved = s.held - self.mark >= G or s.held >= s.size
        if moved:
            self.mark = s.held
        headers = {"range": f"bytes=0-{s.held - 1}"} if s.held else {}
        return Response(308, headers), ("progress" if moved else "head" if probe else "bad")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_youtube_upload_keeps_its_promises_whatever_the_server_answers(
    data: st.DataObject,
) -> None:
    size = data.draw(st.sampled_from((1, G - 1, G, 3 * G + 5)), label="size")
    content = random.Random(size).randbytes(size)
    clock = FakeClock()
    deadline = clock.now() + (POLICY.deadline_s or 0)
    retry = RetryContext(policy=POLICY, clock=clock.now, rng=random.Random(1), deadline=deadline)
    auth = HeaderPolicy.for_endpoint(ORIGIN, {"Authorization": "Bearer t"})
    platform = YouTubePlatform(auth, chunk_size=G, clock=clock.now)
    file = LocalFile("/v/clip.mp4", size, 1)
    post = Post("p1", "youtube", ORIGIN, file.path, FileIdentity(size, 1), PostState.UPLOADING)
    upload = platform.begin(UploadJob(post=post, file=file, retry=retry, default_chunk_size=G))
    server = DrawnYouTube(data.draw, clock, size, content,
                          honest=data.draw(st.sampled_from((2, 5, 12)), label="honesty"))

    run = pump(upload.run(), server, data=content, clock=clock, max_effects=20_000)

    assert run.error is None or isinstance(run.error, SteadypostError), repr(run.error)
    verdicts = server.verdicts
    for i in range(1, len(run.exchanges)):
        cleared = run.exchanges[i].waited_s >= POLICY.floor_s or verdicts[i - 1] == "progress"
        if not cleared and verdicts[i - 1] == "head":
            cleared = True  # the chunk a valid probe enables may follow at once
        history = [(e.request.method, e.request.header("content-range"), v)
                   for e, v in zip(run.exchanges[: i + 1], verdicts, strict=False)][-5:]
        assert cleared, f"request #{i} without progress or a wait: {history}"
    for exchange in run.exchanges:
        if exchange.waited_s:
            assert exchange.at <= deadline + 1e-6
    spent = sum(counted_wire(e.response, e.error, e.request.body.length) for e in run.exchanges
                if isinstance(e.request.body, FileBody))  # fmt: skip
    limit = WireMeter.for_file(POLICY, size, min(G, size)).limit
    assert limit is None or spent <= limit, (spent, limit)
    finished = [s for s in server.sessions.values() if s.done]
    assert len(finished) <= 1, "two sessions completed: two videos"
    if run.error is None:
        assert len(finished) == 1
        assert run.result is not None
