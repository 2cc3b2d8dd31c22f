"""TikTok (Content Posting API): a local video posted once, by Direct Post or to the inbox.

::

    from steadypost import Uploader
    from steadypost.platforms.tiktok import TIKTOK_API, TikTokPlatform

    with Uploader(headers={"Authorization": f"Bearer {access_token}"}) as up:
        post = up.post("clip.mp4", TIKTOK_API, metadata={"title": "Sunset #beach"},
                       platform=TikTokPlatform(privacy_level="PUBLIC_TO_EVERYONE"))

What happens, and what the journal keeps (``post.extra["tiktok"]``):

1. Direct Post only: ``creator_info/query`` says which privacy levels the
   account may use; a post asking for another one fails before any upload.
2. The chunk plan is checked against TikTok's rules
   (:mod:`~steadypost.platforms.tiktok.chunks`); then the *intent* is
   journaled, then ``video/init`` (or ``inbox/video/init``) is called with
   ``source: FILE_UPLOAD``. Its ``publish_id`` and ``upload_url``, and when
   the URL was issued, are journaled the moment they arrive. TikTok publishes
   nothing until every byte arrived, so an init whose answer was lost is
   simply made again.
3. Chunks go in order, ``PUT upload_url`` with ``Content-Range`` and the
   video's ``Content-Type``, streamed from disk. Each acknowledged chunk is
   journaled (the post's ``offset``); after a crash the upload continues with
   the next chunk. A failed chunk is sent again after a backoff, except the
   final one when its answer was lost: whether TikTok got it is settled by
   the status check, not by sending it again.
4. The upload URL lives one hour: a chunk is never started within
   ``url_margin_s`` of its end; a new init is made instead.
5. ``status/fetch`` settles the post: published or in the inbox -> confirmed;
   processing -> checked again later; failed -> re-posted only for a reason a
   retry can help (``internal``), otherwise failed with TikTok's reason.

Tokens come from the uploader's ``headers`` or its ``token_provider``; they
are never journaled or logged (rate limits are keyed by a hash).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from steadypost.errors import (
    Outcome,
    SteadypostError,
    UploadGoneError,
)
from steadypost.flow import (
    Emit,
    FileBody,
    Flow,
    Request,
    WireMeter,
    wait_before_retry,
    with_retries,
)
from steadypost.flow.events import (
    OffsetAcknowledged,
    PlatformState,
    UploadCreated,
    UploadRestarted,
)
from steadypost.models import Post, UploadResult
from steadypost.platforms.base import CheckResult, CheckStatus, PlatformUpload, UploadJob
from steadypost.platforms.http import HeaderPolicy, status_error
from steadypost.platforms.tiktok.api import (
    API_BASE,
    DIRECT_INIT_PATH,
    INBOX_INIT_PATH,
    TikTokApi,
    TikTokRuleError,
    post_info,
    status_result,
)
from steadypost.platforms.tiktok.chunks import (
    Chunk,
    ChunkPlan,
    choose_chunk_size,
    content_type_for,
    plan_chunks,
)
from steadypost.policy import is_transient

TIKTOK_API = API_BASE
Mode = Literal["direct", "inbox"]
#: Unaudited apps may only post privately; choose another level once yours is audited.
DEFAULT_PRIVACY_LEVEL = "SELF_ONLY"
#: The chunk size of the media transfer guide's example: resumes lose at most 10 MB.
DEFAULT_CHUNK_SIZE = 10_000_000
#: "The upload URL is valid for one hour" (from a secondary copy of TikTok's docs).
UPLOAD_URL_LIFETIME_S = 3600.0
#: No chunk is started this close to the URL's end (room for a slow 64 MB chunk).
DEFAULT_URL_MARGIN_S = 600.0
#: How long a post waits when the account has too many shares pending.
DEFAULT_PENDING_SHARE_WAIT_S = 3600.0
DEFAULT_MAX_RESTARTS = 3


@dataclass(frozen=True, kw_only=True)
class TikTokOptions:
    """How TikTok posts are made; journaled with each post (as strings) to rebuild the adapter."""

    mode: Mode = "direct"
    """``"direct"``: Direct Post (scope ``video.publish``); ``"inbox"``: the creator finishes
    the post in the TikTok app (scope ``video.upload``)."""
    privacy_level: str = DEFAULT_PRIVACY_LEVEL
    """Direct Post only; must be one the account's ``creator_info`` allows.
    A post's ``metadata["privacy_level"]`` overrides it."""
    chunk_size: int = DEFAULT_CHUNK_SIZE
    """Preferred chunk size; adjusted to TikTok's rules (see ``choose_chunk_size``)."""
    account: str = ""
    """Your label for the account, passed to a token provider (never a token)."""
    url_margin_s: float = DEFAULT_URL_MARGIN_S
    pending_share_wait_s: float = DEFAULT_PENDING_SHARE_WAIT_S
    max_restarts: int = DEFAULT_MAX_RESTARTS
    """How many new inits one run may make after upload URLs died or TikTok dropped a post."""

    def __post_init__(self) -> None:
        if self.mode not in ("direct", "inbox"):
            raise ValueError(f"mode must be 'direct' or 'inbox', not {self.mode!r}")
        if self.chunk_size < 1 or self.url_margin_s < 0 or self.max_restarts < 0:
            raise ValueError("chunk_size must be >= 1; url_margin_s and max_restarts >= 0")

    def to_config(self) -> dict[str, str]:
        return {
            "mode": self.mode, "privacy_level": self.privacy_level,
            "chunk_size": str(self.chunk_size), "account": self.account,
            "url_margin_s": repr(self.url_margin_s),
            "pending_share_wait_s": repr(self.pending_share_wait_s),
            "max_restarts": str(self.max_restarts),
        }  # fmt: skip

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> TikTokOptions:
        mode = config.get("mode", "direct")
        if mode not in ("direct", "inbox"):
            # Never guess: "direct" publishes for everyone to see, "inbox" leaves a draft.
            raise ValueError(f"mode must be 'direct' or 'inbox', not {mode!r}")
        return cls(
            mode="inbox" if mode == "inbox" else "direct",
            privacy_level=config.get("privacy_level", DEFAULT_PRIVACY_LEVEL),
            chunk_size=int(config.get("chunk_size", DEFAULT_CHUNK_SIZE)),
            account=config.get("account", ""),
            url_margin_s=float(config.get("url_margin_s", DEFAULT_URL_MARGIN_S)),
            pending_share_wait_s=float(
                config.get("pending_share_wait_s", DEFAULT_PENDING_SHARE_WAIT_S)
            ),
            max_restarts=int(config.get("max_restarts", DEFAULT_MAX_RESTARTS)),
        )


class TikTokPlatform:
    """TikTok's Content Posting API for local files. The post's endpoint is the API base.

    Options (keyword-only) are :class:`TikTokOptions`' fields. ``auth`` is
    filled in by the uploader (its headers or token provider); leave it out
    when passing the adapter to ``Uploader.post(platform=...)``.
    """

    name = "tiktok"

    def __init__(
        self, auth: HeaderPolicy | None = None, *, mode: Mode = "direct",
        privacy_level: str = DEFAULT_PRIVACY_LEVEL, chunk_size: int = DEFAULT_CHUNK_SIZE,
        account: str = "", url_margin_s: float = DEFAULT_URL_MARGIN_S,
        pending_share_wait_s: float = DEFAULT_PENDING_SHARE_WAIT_S,
        max_restarts: int = DEFAULT_MAX_RESTARTS, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.auth = auth if auth is not None else HeaderPolicy()
        self.options = TikTokOptions(
            mode=mode, privacy_level=privacy_level, chunk_size=chunk_size, account=account,
            url_margin_s=url_margin_s, pending_share_wait_s=pending_share_wait_s,
            max_restarts=max_restarts,
        )  # fmt: skip
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: Mapping[str, str], auth: HeaderPolicy, *, clock: Callable[[], float]
    ) -> TikTokPlatform:
        o = TikTokOptions.from_config(config)
        return cls(
            auth, mode=o.mode, privacy_level=o.privacy_level, chunk_size=o.chunk_size,
            account=o.account, url_margin_s=o.url_margin_s,
            pending_share_wait_s=o.pending_share_wait_s, max_restarts=o.max_restarts, clock=clock,
        )  # fmt: skip

    def config(self) -> Mapping[str, str]:
        return MappingProxyType(self.options.to_config())

    def api(self, endpoint: str) -> TikTokApi:
        return TikTokApi(
            endpoint, self.auth, clock=self.clock, wait_s=self.options.pending_share_wait_s
        )

    def begin(self, job: UploadJob) -> PlatformUpload:
        return TikTokUpload(self, job)

    def publish(self, post: Post, upload_url: str) -> Flow[CheckResult] | None:
        """No publish call exists: the first status check right after the last chunk."""
        return self.check(post)

    def check(self, post: Post) -> Flow[CheckResult]:
        """``status/fetch`` for the journaled ``publish_id``."""
        state = post.extra.get("tiktok") or {}
        publish_id = state.get("publish_id")
        if not publish_id:
            return CheckResult(
                CheckStatus.NOT_PROCESSED,
                "no publish id was journaled: TikTok publishes nothing before its init is "
                "answered and every byte arrived",
            )
        data = yield from self.api(post.endpoint).status(str(publish_id))
        size = post.identity.size
        acknowledged = post.offset >= size and post.upload_url == state.get("upload_url")
        expires = post.upload_expires_ts
        alive = expires is None or self.clock() < expires
        return status_result(data, video_size=size, all_acknowledged=acknowledged, url_alive=alive)

    def cancel(self, post: Post) -> Flow[None] | None:
        """TikTok documents no way to withdraw an upload: only the journal changes."""
        return None


class TikTokUpload:
    """One run of a TikTok post's upload (see the module docstring for the steps)."""

    def __init__(self, platform: TikTokPlatform, job: UploadJob) -> None:
        self.options = platform.options
        self.api = platform.api(job.post.endpoint)
        self.post = job.post
        self.file = job.file
        self.retry = job.retry
        self.preferred_chunk = job.chunk_size or self.options.chunk_size
        self._creator_checked = False
        # Where an earlier run stopped (all None: start with an init).
        self.plan: ChunkPlan | None = None
        self.publish_id: str | None = None
        self.upload_url: str | None = None
        self.expires_at: float | None = None
        self.acknowledged = 0
        # Every byte this post puts on the wire, over all its runs, against its bound.
        self.wire = WireMeter.for_file(self.retry.policy, self.file.size,
                                       choose_chunk_size(self.file.size, self.preferred_chunk),
                                       spent=job.post.bytes_sent)  # fmt: skip
        state = job.post.extra.get("tiktok") or {}
        plan = _journaled_plan(state, self.file.size)
        url = job.post.upload_url
        if plan is not None and state.get("publish_id") and url and url == state.get("upload_url"):
            try:
                plan.index_at(job.post.offset)
            except ValueError:
                return  # not on a chunk boundary: the journal is not ours to trust
            self.plan, self.publish_id, self.upload_url = plan, str(state["publish_id"]), url
            self.expires_at = job.post.upload_expires_ts
            self.acknowledged = job.post.offset

    def _forget(self) -> None:
        self.plan, self.publish_id, self.upload_url, self.expires_at = None, None, None, None
        self.acknowledged = 0

    def run(self) -> Flow[UploadResult]:
        content_type = content_type_for(self.file.path)
        restarts = 0
        while True:
            try:
                if self.upload_url is None:
                    yield from self._init()
                elif self.acknowledged >= self.file.size:
                    yield from self._check_earlier_upload()
                    return self._result()
                else:
                    done = self.acknowledged
                    yield Emit(OffsetAcknowledged(self.upload_url, done, self.file.size))
                yield from self._send_chunks(content_type)
                return self._result()
            except UploadGoneError as exc:
                restarts += 1
                if restarts > self.options.max_restarts:
                    raise
                yield Emit(UploadRestarted(self.upload_url, str(exc)))
                self._forget()
                # Its answer said "gone": a failed attempt too, so a wait comes first.
                yield from wait_before_retry(
                    self.retry, restarts, "TikTok's upload is gone: starting a new one"
                )

    def _result(self) -> UploadResult:
        assert self.upload_url is not None
        size = self.file.size
        return UploadResult(self.upload_url, size, size)

    # -- init --

    def _check_creator(self) -> Flow[None]:
        """Direct Post: the privacy level must be one the account may use."""
        if self.options.mode != "direct" or self._creator_checked:
            return
        creator = yield from with_retries(self.api.creator_info, self.retry)
        wanted = self.post.metadata.get("privacy_level") or self.options.privacy_level
        allowed = creator.privacy_level_options
        if allowed and wanted not in allowed:
            raise TikTokRuleError(
                f"TikTok lets this account post only as {', '.join(allowed)}; the post asks for "
                f"{wanted}. Choose one of those (privacy_level) and post again"
            )
        self._creator_checked = True

    def _init(self) -> Flow[None]:
        size = self.file.size
        plan = plan_chunks(size, choose_chunk_size(size, self.preferred_chunk))
        yield from self._check_creator()
        direct = self.options.mode == "direct"
        intent: dict[str, Any] = {
            "mode": self.options.mode, "video_size": size, "chunk_size": plan.chunk_size,
            "total_chunk_count": plan.total_chunk_count, "init_started_at": self.retry.clock(),
        }  # fmt: skip
        yield Emit(PlatformState({"tiktok": intent}))  # journaled before the request
        body: dict[str, Any] = {"source_info": plan.source_info()}
        if direct:
            body["post_info"] = post_info(self.post, self.options.privacy_level)
        path = DIRECT_INIT_PATH if direct else INBOX_INIT_PATH
        init = functools.partial(self.api.init, path, body)
        publish_id, url, sent_at = yield from with_retries(init, self.retry)
        expires = sent_at + UPLOAD_URL_LIFETIME_S
        state = {
            **intent, "publish_id": publish_id, "upload_url": url,
            "upload_url_issued_at": sent_at, "upload_url_expires_at": expires,
        }  # fmt: skip
        self.plan, self.publish_id, self.upload_url = plan, publish_id, url
        self.expires_at, self.acknowledged = expires, 0
        yield Emit(UploadCreated(url, expires, 0, extra={"tiktok": state}))
        yield Emit(OffsetAcknowledged(url, 0, size))

    def _check_earlier_upload(self) -> Flow[None]:
        """Every chunk was acknowledged in an earlier run: does TikTok still have the post?

        Published, processing, or refused for good: the publish step reports
        it. Failed with a retryable reason, or never complete: a new init.
        """
        assert self.publish_id is not None
        data = yield from with_retries(functools.partial(self.api.status, self.publish_id),
                                       self.retry)  # fmt: skip
        result = status_result(
            data, video_size=self.file.size, all_acknowledged=True, url_alive=True
        )
        if result.status is CheckStatus.FAILED and result.retryable:
            raise UploadGoneError(f"TikTok's earlier upload failed ({result.reason})")
        if result.status is CheckStatus.NOT_PROCESSED:
            raise UploadGoneError(f"TikTok did not take the earlier upload ({result.reason})")

    # -- chunks --

    def _send_chunks(self, content_type: str) -> Flow[None]:
        plan, url = self.plan, self.upload_url
        assert plan is not None
        assert url is not None
        size = self.file.size
        while self.acknowledged < size:
            chunk = plan.chunk(plan.index_at(self.acknowledged))
            final = chunk.index == plan.total_chunk_count - 1
            attempt = functools.partial(self._put, url, chunk, content_type)
            resend = functools.partial(self._resend_allowed, final)
            yield from with_retries(attempt, self.retry, retry_if=resend)
            self.acknowledged = chunk.last + 1
            yield Emit(OffsetAcknowledged(url, self.acknowledged, size))

    def _resend_allowed(self, final: bool, exc: BaseException) -> bool:
        """Transient failures are retried, but a final chunk only if it certainly did not land."""
        if not is_transient(self.retry.policy, exc):
            return False
        return not final or (isinstance(exc, SteadypostError)
                             and exc.outcome is Outcome.NOT_DELIVERED)  # fmt: skip

    def _put(self, url: str, chunk: Chunk, content_type: str) -> Flow[None]:
        """One chunk; refused in advance when the URL would die before it can finish."""
        now = self.retry.clock()
        if self.expires_at is not None and now + self.options.url_margin_s >= self.expires_at:
            left = max(0.0, self.expires_at - now)
            raise UploadGoneError(
                f"TikTok's upload URL ends in {left / 60:.0f} min: a new upload is started "
                "rather than sending into it"
            )
        f = self.file
        body = FileBody(f, chunk.first, chunk.length)
        what = f"sending chunk {chunk.index + 1} of {f.path}"
        yield from self.wire.sending(url, body, what=what)
        headers = self.api.auth.for_url(
            url, ("Content-Type", content_type), ("Content-Range", chunk.content_range(f.size))
        )
        req = Request("PUT", url, headers, body)
        resp = yield from self.wire.exchange(req)
        if 200 <= resp.status < 300:
            return
        if resp.status in (404, 410):
            raise UploadGoneError(f"TikTok's upload URL is gone ({resp.status})")
        assert self.plan is not None
        what = f"sending chunk {chunk.index + 1} of {self.plan.total_chunk_count} failed"
        raise status_error(req, resp, what=what)


def _journaled_plan(state: Mapping[str, Any], size: int) -> ChunkPlan | None:
    """The plan an earlier run declared to TikTok, if the journal has it for this file size."""
    try:
        plan = ChunkPlan(
            int(state["video_size"]), int(state["chunk_size"]), int(state["total_chunk_count"])
        )
    except (KeyError, TypeError, ValueError):
        return None
    return plan if plan.video_size == size and plan.chunk_size > 0 else None
