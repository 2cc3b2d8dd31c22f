"""The platforms of ``benchmarks/duplicates.py``: per platform its fault kinds, its simulator,
its steadypost adapter, what counts as a published copy, and the transport that puts one
simulator behind every post.

A platform is a :class:`Spec`. Its kinds (:class:`Kind`) are the ambiguous failures that
platform can show, each a seeded share of the posts with the fault rules it arms on that
post's own simulator; ``duplicates.py``'s docstring lists them and says why.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from naive_clients import (
    NaiveClient,
    NaiveInstagram,
    NaivePostApi,
    NaiveTikTok,
    NaiveVimeo,
    NaiveX,
    NaiveYouTube,
)

from steadypost.platforms.base import Platform
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.instagram import GRAPH_API, InstagramPlatform
from steadypost.platforms.tiktok import TIKTOK_API, TikTokPlatform
from steadypost.platforms.tus.adapters import PostApiPlatform
from steadypost.platforms.vimeo import VIMEO_API, VimeoPlatform
from steadypost.platforms.x import X_API, XPlatform
from steadypost.platforms.youtube import YOUTUBE_API, YouTubePlatform
from steadypost.testing import (
    FakeClock,
    Fault,
    InstagramConfig,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    Respond,
    SimTransport,
    SlowProcessing,
    TikTokConfig,
    VimeoConfig,
    XConfig,
    YouTubeConfig,
    tiktok_fault,
    youtube_fault,
)

MIN, HOUR = 60.0, 3600.0
POST_API = "https://platform.test"
POST_API_ENDPOINT = f"{POST_API}/files/"
PUBLISH_URL = f"{POST_API}/posts"
STATUS_URL = f"{POST_API}/posts/{{post_id}}/status"
IG_USER = "17841400000000001"
#: Each post's adapter carries ``account=<post id>``; the token provider answers this
#: prefix + the account, so every request with a token names its post (see PerPostPlatform).
TOKEN_PREFIX = "tok-"
#: How many answers a "busy" kind refuses: one more than the naive client's default tries.
BUSY_ANSWERS = 6

# --- the plan: one seeded fault scenario per post ------------------------------------


@dataclass(frozen=True)
class PlannedPost:
    index: int
    post_id: str
    kind: str
    file: int
    slow_s: float = 0.0
    failures: int = 0
    """How many reads (HEAD, status, list) fail after the fault, for kinds that want some."""


@dataclass(frozen=True)
class Kind:
    """One ambiguous failure: its default share of the posts and the rules it arms."""

    name: str
    share: float
    rules: Callable[[PlannedPost], list[Fault]]
    slow: bool = False
    """Its video also processes for a while (the platform's ``slow_range``)."""
    multi_chunk: bool = False
    """It needs a file of more than one chunk."""
    failures: bool = False
    """1-3 failing reads follow (``PlannedPost.failures``)."""


def make_plan(
    n: int, rng: random.Random, mix: dict[str, float], kinds: dict[str, Kind],
    sizes: Sequence[int], chunk_size: int, slow_range: tuple[float, float],
) -> list[PlannedPost]:  # fmt: skip
    names, weights = list(mix), list(mix.values())
    multi_chunk = [i for i, size in enumerate(sizes) if size > chunk_size]
    plan = []
    for index in range(n):
        kind = kinds[rng.choices(names, weights)[0]]
        file = rng.choice(multi_chunk) if kind.multi_chunk else rng.randrange(len(sizes))
        slow = rng.uniform(*slow_range) if kind.slow else 0.0
        failures = rng.randint(1, 3) if kind.failures else 0
        post_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        plan.append(PlannedPost(index, post_id, kind.name, file, slow, failures))
    return plan


# --- the kinds, per platform ---------------------------------------------------------


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    return {k.name: k for k in kinds}


def _arm(*rules: Fault) -> Callable[[PlannedPost], list[Fault]]:
    return lambda _p: list(rules)


def _then(first: Fault, read: Callable[[int], Fault]) -> Callable[[PlannedPost], list[Fault]]:
    """``first``, then ``p.failures`` failing reads."""
    return lambda p: [first, read(p.failures)]


PROCESSED_500 = {"publish": ProcessedButError(status=500, on={"publish"}, times=1),
                 "final": ProcessedButError(status=500, on={"final_patch"}, times=1)}  # fmt: skip
NO_ANSWER = {step: ProcessedButTimeout(on={step}, times=1)
             for step in ("publish", "final_patch", "create")}  # fmt: skip
CLEAN = Kind("clean", 0.20, _arm())

POST_API_KINDS = _kinds(
    Kind("processed_500", 0.17, _arm(PROCESSED_500["publish"])),
    Kind("processed_500_slow", 0.05, _arm(PROCESSED_500["publish"]), slow=True),
    Kind("processed_timeout", 0.17, _arm(NO_ANSWER["publish"])),
    Kind("lost_500", 0.13, _arm(Respond(status=500, path="/posts", methods={"POST"}))),
    Kind("slow", 0.13, _arm(), slow=True),
    Kind("final_patch_lost", 0.10, _then(
        NO_ANSWER["final_patch"], lambda n: Respond(status=503, methods={"HEAD"}, times=n)),
        multi_chunk=True, failures=True),
    Kind("publish_busy", 0.05, _arm(Respond(status=503, path="/posts", methods={"POST"},
                                            times=BUSY_ANSWERS))),
    CLEAN,
)  # fmt: skip

TIKTOK_PUT = "/video/"
TIKTOK_STATUS = "/v2/post/publish/status/fetch/"
TIKTOK_KINDS = _kinds(
    Kind("last_chunk_500", 0.17, _arm(PROCESSED_500["final"])),
    Kind("last_chunk_500_slow", 0.05, _arm(PROCESSED_500["final"]), slow=True),
    Kind("last_chunk_timeout", 0.17, _arm(NO_ANSWER["final_patch"])),
    Kind("last_chunk_lost_500", 0.13, _arm(Respond(status=500, path=TIKTOK_PUT,
                                                   methods={"PUT"}))),
    Kind("status_down", 0.08, _then(NO_ANSWER["final_patch"], lambda n: tiktok_fault(
        "internal_error", status=503, path=TIKTOK_STATUS, times=n)), failures=True),
    Kind("init_timeout", 0.05, _arm(NO_ANSWER["create"])),
    Kind("slow", 0.10, _arm(), slow=True),
    Kind("upload_busy", 0.05, _arm(Respond(status=503, path=TIKTOK_PUT, methods={"PUT"},
                                           times=BUSY_ANSWERS))),
    CLEAN,
)  # fmt: skip

VIMEO_KINDS = _kinds(
    Kind("final_patch_500", 0.17, _arm(PROCESSED_500["final"])),
    Kind("final_patch_500_slow", 0.05, _arm(PROCESSED_500["final"]), slow=True),
    Kind("final_patch_lost", 0.17, _then(
        NO_ANSWER["final_patch"], lambda n: Respond(status=503, methods={"HEAD"}, times=n)),
        multi_chunk=True, failures=True),
    Kind("patch_lost_500", 0.13, _arm(Respond(status=500, methods={"PATCH"}))),
    Kind("check_down", 0.08, _then(NO_ANSWER["final_patch"], lambda n: Respond(
        status=503, path="/videos/", methods={"GET"}, times=n)), failures=True),
    Kind("create_timeout", 0.05, _arm(NO_ANSWER["create"])),
    Kind("slow", 0.10, _arm(), slow=True),
    Kind("upload_busy", 0.05, _arm(Respond(status=503, methods={"PATCH"}, times=BUSY_ANSWERS))),
    CLEAN,
)  # fmt: skip

YT_UPLOAD = "/upload/youtube/v3/videos"
YT_LIST = "/youtube/v3/videos"
YOUTUBE_KINDS = _kinds(
    Kind("final_chunk_500", 0.17, _arm(PROCESSED_500["final"])),
    Kind("final_chunk_500_slow", 0.05, _arm(PROCESSED_500["final"]), slow=True),
    Kind("final_chunk_timeout", 0.17, _arm(NO_ANSWER["final_patch"])),
    Kind("final_chunk_lost_500", 0.13, _arm(youtube_fault(
        "backendError", status=500, path=YT_UPLOAD, methods={"PUT"}))),
    Kind("list_down", 0.08, _then(NO_ANSWER["final_patch"], lambda n: youtube_fault(
        "backendError", status=503, path=YT_LIST, methods={"GET"}, times=n)), failures=True),
    Kind("init_timeout", 0.05, _arm(NO_ANSWER["create"])),
    Kind("slow", 0.10, _arm(), slow=True),
    Kind("upload_busy", 0.05, _arm(youtube_fault(
        "backendError", status=503, path=YT_UPLOAD, methods={"PUT"}, times=BUSY_ANSWERS))),
    CLEAN,
)  # fmt: skip

IG_PUBLISH = f"/{IG_USER}/media_publish"
_GRAPH_BUSY = json.dumps({"error": {"message": "Service temporarily unavailable", "code": 2,
                                    "type": "OAuthException", "is_transient": True}}).encode()
INSTAGRAM_KINDS = _kinds(
    Kind("publish_500", 0.20, _arm(PROCESSED_500["publish"])),
    Kind("publish_timeout", 0.20, _arm(NO_ANSWER["publish"])),
    Kind("publish_lost_500", 0.13, _arm(Respond(status=500, path=IG_PUBLISH,
                                                methods={"POST"}))),
    Kind("status_down", 0.07, _then(NO_ANSWER["publish"], lambda n: Respond(
        status=503, methods={"GET"}, times=n)), failures=True),
    Kind("upload_timeout", 0.05, _arm(NO_ANSWER["final_patch"])),
    Kind("slow", 0.10, _arm(), slow=True),
    Kind("publish_busy", 0.05, _arm(Respond(
        status=503, path=IG_PUBLISH, methods={"POST"}, times=BUSY_ANSWERS, body=_GRAPH_BUSY,
        content_type="application/json"))),
    CLEAN,
)  # fmt: skip

X_CREATE = "/2/tweets"
X_KINDS = _kinds(
    Kind("create_500", 0.20, _arm(PROCESSED_500["publish"])),
    Kind("create_timeout", 0.20, _arm(NO_ANSWER["publish"])),
    Kind("create_lost_500", 0.13, _arm(Respond(status=500, path=X_CREATE, methods={"POST"}))),
    Kind("timeline_down", 0.07, _then(NO_ANSWER["publish"], lambda n: Respond(
        status=503, path="/2/users/", methods={"GET"}, times=n)), failures=True),
    Kind("finalize_timeout", 0.05, _arm(NO_ANSWER["final_patch"])),
    Kind("slow", 0.10, _arm(), slow=True),
    Kind("create_busy", 0.05, _arm(Respond(status=503, path=X_CREATE, methods={"POST"},
                                           times=BUSY_ANSWERS))),
    CLEAN,
)  # fmt: skip


# --- the platforms -------------------------------------------------------------------

Copies = Callable[[PlatformSimulator], list[str]]
"""The SHA-256 of every copy that is or will be live without another request."""


@dataclass(frozen=True)
class Spec:
    """How one platform is benchmarked."""

    name: str
    endpoint: str
    kinds: dict[str, Kind]
    slow_range: tuple[float, float]
    sim_options: Callable[[], dict[str, Any]]
    """``PlatformSimulator`` keywords (its platform's config)."""
    adapter: Callable[[str], Platform]
    """The steadypost adapter for a post id (``account`` = the post id)."""
    copies: Copies
    naive: type[NaiveClient]
    caption_key: str
    tokens: bool = True
    """Whether posts carry a per-post token (post-api: no; it routes by key and URL)."""

    def rules(self, p: PlannedPost) -> list[Fault]:
        rules = self.kinds[p.kind].rules(p)
        if p.slow_s:
            rules.append(SlowProcessing(seconds=p.slow_s, times=1))
        return rules

    def default_mix(self) -> dict[str, float]:
        total = sum(k.share for k in self.kinds.values())
        return {name: k.share / total for name, k in self.kinds.items()}


def _vimeo_copies(sim: PlatformSimulator) -> list[str]:
    return [v.sha256 for v in sim.vimeo.videos()
            if v.upload_status == "complete" and v.transcode_status != "error"]  # fmt: skip


def _post_api(_post_id: str) -> Platform:
    return PostApiPlatform(HeaderPolicy(), publish_url=PUBLISH_URL, status_url=STATUS_URL)


#: ``--youtube-rejects-duplicates`` sets this in the worker before a run (default False).
YOUTUBE_OPTIONS: dict[str, bool] = {"reject_duplicates": False}

SPECS: dict[str, Spec] = {s.name: s for s in (
    Spec("post-api", POST_API_ENDPOINT, POST_API_KINDS, (20 * MIN, 5 * HOUR), dict, _post_api,
         lambda sim: [c.sha256 for c in sim.published], NaivePostApi, "caption", tokens=False),
    Spec("tiktok", TIKTOK_API, TIKTOK_KINDS, (20 * MIN, 5 * HOUR),
         lambda: {"tiktok": TikTokConfig(upload_origin="https://open-upload.tiktokapis.com")},
         lambda pid: TikTokPlatform(account=pid),
         lambda sim: [p.sha256 for p in sim.tiktok.published()], NaiveTikTok, "title"),
    Spec("vimeo", VIMEO_API, VIMEO_KINDS, (20 * MIN, 5 * HOUR),
         lambda: {"vimeo": VimeoConfig(upload_origin="https://files.tus.vimeo.com")},
         lambda pid: VimeoPlatform(account=pid), _vimeo_copies, NaiveVimeo, "title"),
    Spec("youtube", YOUTUBE_API, YOUTUBE_KINDS, (20 * MIN, 5 * HOUR),
         lambda: {"youtube": YouTubeConfig(**YOUTUBE_OPTIONS)},
         lambda pid: YouTubePlatform(account=pid),
         lambda sim: [v.sha256 for v in sim.youtube.published()], NaiveYouTube, "title"),
    Spec("instagram", GRAPH_API, INSTAGRAM_KINDS, (5 * MIN, 1 * HOUR),
         lambda: {"instagram": InstagramConfig()},
         lambda pid: InstagramPlatform(ig_user_id=IG_USER, account=pid),
         lambda sim: [r.sha256 for r in sim.instagram.published()], NaiveInstagram, "caption"),
    Spec("x", X_API, X_KINDS, (1 * MIN, 20 * MIN), lambda: {"x": XConfig()},
         lambda pid: XPlatform(account=pid), lambda sim: [p.sha256 for p in sim.x.posts()],
         NaiveX, "text"),
)}  # fmt: skip


# --- one simulator per post behind one transport --------------------------------------


def _token(value: str | None) -> str | None:
    """The post id a ``Bearer`` / ``OAuth`` token of ours names, else ``None``."""
    _, _, token = (value or "").partition(" ")
    token = token.strip()
    return token[len(TOKEN_PREFIX):] if token.startswith(TOKEN_PREFIX) else None


def _metadata_value(header: str | None, key: str) -> str | None:
    for pair in (header or "").split(","):
        name, _, value = pair.strip().partition(" ")
        if name == key:
            return base64.b64decode(value).decode() if value else ""
    return None


def _url_key(url: httpx.URL) -> tuple[str, str]:
    return url.path.rstrip("/"), url.query.decode("ascii", "replace")


def _urls(value: Any) -> Iterator[str]:
    """Every http(s) URL among the strings of a JSON value."""
    if isinstance(value, str):
        if value.startswith(("http://", "https://")):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _urls(item)


class PerPostPlatform(httpx.BaseTransport):
    """An httpx transport: a platform's hosts, one :class:`PlatformSimulator` per post.

    A request goes to its post's simulator by, in order: its token (``tok-<post id>``,
    in ``Authorization``); a URL that simulator handed out earlier (a ``Location``, or a
    URL in a JSON answer: upload links, TikTok's upload URL, a tus upload); for the
    post-api convention, the tus ``post_id`` metadata, the ``Idempotency-Key``, the
    ``upload_url`` of a publish, the id in a status path. A URL two simulators handed out
    routes nowhere. Anything unrouted goes to ``front`` (and is counted: it must not
    happen, OPTIONS aside). With ``pinned`` set, everything goes to that simulator (the
    naive clients, which finish one post before the next).
    """

    def __init__(self, clock: FakeClock, spec: Spec, *, ignore_idempotency: bool = False) -> None:
        self.clock = clock
        self.spec = spec
        self.ignore_idempotency = ignore_idempotency
        self.front = self._sim([])
        self.sims: dict[str, PlatformSimulator] = {}
        self.pinned: PlatformSimulator | None = None
        self._learned: dict[tuple[str, str], PlatformSimulator | None] = {}
        self._transports: dict[int, SimTransport] = {id(self.front): self.front.transport()}

    def _sim(self, rules: list[Fault]) -> PlatformSimulator:
        return PlatformSimulator(clock=self.clock, faults=rules,
                                 ignore_idempotency=self.ignore_idempotency,
                                 **self.spec.sim_options())  # fmt: skip

    def add(self, post_id: str, rules: list[Fault]) -> PlatformSimulator:
        sim = self.sims[post_id] = self._sim(rules)
        self._transports[id(sim)] = sim.transport()
        return sim

    def all_sims(self) -> Iterator[PlatformSimulator]:
        yield self.front
        yield from self.sims.values()

    def _route(self, request: httpx.Request) -> PlatformSimulator:
        if self.pinned is not None:
            return self.pinned
        post_id = _token(request.headers.get("authorization"))
        if post_id is not None:
            return self.sims.get(post_id, self.front)
        learned = self._learned.get(_url_key(request.url))
        if learned is not None:
            return learned
        path = request.url.path
        if path.rstrip("/") == "/files" and request.method == "POST":
            post_id = _metadata_value(request.headers.get("upload-metadata"), "post_id")
            return self.sims.get(post_id or "", self.front)
        if path.startswith("/posts/"):
            return self.sims.get(path.split("/")[2], self.front)
        if path.rstrip("/") == "/posts":
            key = request.headers.get("idempotency-key")
            if key is not None:
                return self.sims.get(key, self.front)
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                upload_url = httpx.URL(json.loads(request.read())["upload_url"])
                return self._learned.get(_url_key(upload_url)) or self.front
        return self.front

    def _learn(self, response: httpx.Response, sim: PlatformSimulator) -> None:
        urls = [response.headers["location"]] if "location" in response.headers else []
        if "json" in response.headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                urls.extend(_urls(json.loads(response.content)))
        for url in urls:
            key = _url_key(response.request.url.join(url))
            known = self._learned.setdefault(key, sim)
            if known is not sim:
                self._learned[key] = None  # handed out twice: route it nowhere

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sim = self._route(request)
        response = self._transports[id(sim)].handle_request(request)
        if sim is not self.front:
            self._learn(response, sim)
        return response
