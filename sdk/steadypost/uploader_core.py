"""What :class:`~steadypost.Uploader` and :class:`~steadypost.AsyncUploader` share.

Options, flow construction, and the post-level flows (upload then publish;
verify; cancel). Those are generators like the protocol flows below them:
they yield requests and sleeps for a driver to carry out, and make their
journal writes in between, so each is written once for both drivers.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType

from .digest import FileHasher
from .errors import (
    AuthorizationError,
    HostUnavailableError,
    IllegalTransitionError,
    InternalError,
    JournalError,
    LeaseHeldError,
    Outcome,
    SteadypostError,
    UploadCancelledError,
)
from .files import snapshot_file
from .flow import FileSha256, Flow, RetryContext, with_retries
from .hosts import HostGuard, HostRegistry, default_registry
from .journal import Journal, make_owner
from .models import LocalFile, Post, PostState, Timeouts, UploadResult
from .observers import RunObserver
from .paths import default_journal_path
from .platforms.base import CheckResult, Platform, PlatformUpload, TokenRequest, UploadJob
from .platforms.common import HeaderPolicy
from .platforms.oauth import OAuthRefresh
from .platforms.registry import platform_for
from .platforms.tus import DEFAULT_CHUNK_SIZE, ServerInfo, TusOptions, TusUpload
from .policy import RetryPolicy, is_transient
from .posting import EventRecorder, PostOptions, PostRun
from .ratelimit import SharedRateLimiter
from .statuspage import StatusPages
from .transport import DEFAULT_BLOCK_SIZE
from .verify import VerifyRun

log = logging.getLogger("steadypost")

#: Checks of unconfirmed posts retry briefly; the next check comes later anyway.
CHECK_ATTEMPTS = 3
_UPLOADABLE = (PostState.QUEUED, PostState.WAITING, PostState.UPLOADING)

TokenProvider = Callable[[TokenRequest], "str | OAuthRefresh | None"]
"""Returns a valid access token for a post's platform account (``None``: use ``headers``),
or an :class:`~steadypost.platforms.oauth.OAuthRefresh` the adapter refreshes itself."""


class UploaderCore:
    """Options, flow construction and post bookkeeping shared by both drivers.

    ``token_provider`` (optional) is called with a
    :class:`~steadypost.platforms.base.TokenRequest` each time a post's
    platform adapter is built (at least once per run of a post; cache and
    refresh OAuth tokens there) and returns the access token to send as
    ``Authorization: Bearer``, or ``None`` to use ``headers``, or an
    :class:`~steadypost.platforms.oauth.OAuthRefresh` (the same object each
    time for an account) that adapters such as YouTube's refresh themselves,
    also after a 401 mid-upload. Tokens are never journaled or logged.

    ``hosts`` (optional) is the :class:`~steadypost.hosts.HostRegistry` of
    per-host circuit breakers and retry budgets; by default every uploader
    of the process on the same journal shares one. ``status_pages`` maps an
    upload origin to its platform's Statuspage JSON URL (or is a
    :class:`~steadypost.statuspage.StatusPages`): posts wait while it reports
    a major outage.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        allowed_origins: frozenset[str] | set[str] | tuple[str, ...] = (),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        checksum: bool = True,
        block_size: int = DEFAULT_BLOCK_SIZE,
        journal: Journal | None = None,
        post_options: PostOptions | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        hosts: HostRegistry | None = None,
        status_pages: Mapping[str, str] | StatusPages | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        self.headers: Mapping[str, str] = MappingProxyType(dict(headers or {}))
        self.allowed_origins = frozenset(allowed_origins)
        self.chunk_size = chunk_size
        self.retry_policy = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.checksum = checksum
        self.block_size = block_size
        self.post_options = post_options or PostOptions()
        self.clock = clock
        self.rng = rng or random.Random()
        self.owner = make_owner()
        self._journal = journal
        self._owns_journal = journal is None
        self._info_cache: dict[str, ServerInfo] = {}
        self._cancel = threading.Event()
        # Per-host breaker and budget: the process's registry for this journal unless given.
        self._hosts = hosts
        # Upload origin -> Statuspage JSON URL: posts wait while it reports a major outage.
        self.status_pages = (
            status_pages if isinstance(status_pages, StatusPages) else StatusPages(status_pages)
        )
        # Platform accounts' tokens (e.g. refreshed OAuth tokens), asked per post run.
        self.token_provider = token_provider
        # Documented per-token rate limits (TikTok), counted in the journal by every process.
        self.rate_limiter = SharedRateLimiter(lambda: self.journal)

    @property
    def journal(self) -> Journal:
        """The journal of posts (opened at the default location on first use)."""
        if self._journal is None:
            self._journal = Journal(clock=self.clock)
        return self._journal

    def _close_journal(self) -> None:
        if self._owns_journal and self._journal is not None:
            self._journal.close()
            self._journal = None

    @property
    def hosts(self) -> HostRegistry:
        """The per-host circuit breakers and retry budgets these uploads share."""
        if self._hosts is None:
            path = self._journal.path if self._journal is not None else default_journal_path()
            self._hosts = default_registry(path, self.clock)
        return self._hosts

    def _guard(self) -> HostGuard:
        """What the drivers ask before each request (breaker state kept in the journal)."""
        cap = self.retry_policy.retry_after_cap_s
        return self.hosts.guard(store=self._journal, retry_after_cap_s=cap)

    def _host_refusal(self, url: str) -> HostUnavailableError | None:
        """Why nothing should be sent to ``url``'s host now (checked before preparing a post)."""
        now = self.clock()
        return self._guard().check(url, now) or self.status_pages.refusal(url, now, self._journal)

    def cancel(self) -> None:
        """Stop running uploads at the next block or wait. They stay resumable."""
        self._cancel.set()

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise UploadCancelledError("the upload was cancelled")

    def _retry_ctx(self, policy: RetryPolicy | None = None) -> RetryContext:
        policy = policy or self.retry_policy
        deadline_s = policy.deadline_s
        return RetryContext(
            policy=policy,
            clock=self.clock,
            rng=self.rng,
            deadline=None if deadline_s is None else self.clock() + deadline_s,
        )

    def _tus(
        self, endpoint: str, file: LocalFile, *, metadata: Mapping[str, str] | None,
        chunk_size: int | None, upload_url: str | None = None, known_offset: int = 0,
        expires_at: float | None = None,
    ) -> TusUpload:  # fmt: skip
        options = TusOptions(
            chunk_size=chunk_size or self.chunk_size,
            headers=self.headers,
            allowed_origins=self.allowed_origins,
            metadata=MappingProxyType(dict(metadata or {})),
            checksum=self.checksum,
        )
        return TusUpload(
            endpoint, file, options, self._retry_ctx(),
            info=self._info_cache.get(endpoint), upload_url=upload_url,
            known_offset=known_offset, expires_at=expires_at,
            answered=self._guard().answered(endpoint),
        )  # fmt: skip

    def _observer(self, total: int, on_progress: Callable[..., None] | None) -> RunObserver:
        guard = self._guard()

        def answered(url: str) -> None:
            guard.mark_answered(url, self.clock())

        return RunObserver(total, on_progress, self._info_cache, on_answered=answered)

    @staticmethod
    def _result(value: UploadResult, obs: RunObserver) -> UploadResult:
        return UploadResult(
            upload_url=value.upload_url, size=value.size, offset=value.offset,
            sha256=value.sha256, bytes_sent=obs.bytes_sent, requests=obs.requests,
        )  # fmt: skip

    # -- platforms --

    def _platform(self, post: Post) -> Platform:
        config = post.extra.get("platform", {})
        headers, oauth = self._account_auth(post, str(config.get("account", "")))
        auth = HeaderPolicy.for_endpoint(post.endpoint, headers, self.allowed_origins,
                                         oauth=oauth)  # fmt: skip
        return platform_for(post.platform, config, auth, clock=self.clock)

    def _account_auth(
        self, post: Post, account: str
    ) -> tuple[Mapping[str, str], OAuthRefresh | None]:
        """``headers``, with the provider's token as ``Authorization``; or its refreshable token."""
        if self.token_provider is None:
            return self.headers, None
        try:
            token = self.token_provider(TokenRequest(post.platform, account, post.endpoint))
        except SteadypostError:
            raise
        except Exception as exc:
            raise AuthorizationError(
                f"the token provider failed for {post.platform} ({type(exc).__name__}): "
                "the post waits and asks again later", platform=post.platform,
                code="token_provider_failed", outcome=Outcome.NOT_DELIVERED,
            ) from exc  # fmt: skip
        if isinstance(token, OAuthRefresh):
            return self.headers, token
        if not token:
            return self.headers, None
        kept = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        return MappingProxyType({**kept, "Authorization": f"Bearer {token}"}), None

    # -- journaled posts --

    def add(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        platform: Platform | None = None,
    ) -> Post:  # fmt: skip
        """Journal a post without uploading it (``resume_pending`` or the daemon will).

        ``platform`` defaults to plain tus; pass a
        :class:`~steadypost.platforms.generic.PostApiPlatform` for a platform
        with a publish call and a status endpoint, a
        :class:`~steadypost.platforms.tiktok.TikTokPlatform` or a
        :class:`~steadypost.platforms.vimeo.VimeoPlatform` (``endpoint`` is then
        the API base). Its settings are journaled with the post (never your
        headers or tokens).
        """
        file = snapshot_file(path)
        name = platform.name if platform is not None else "tus"
        extra = {"platform": dict(platform.config())} if platform is not None else None
        return self.journal.add(
            path=file.path, endpoint=endpoint, platform=name,
            identity=file.identity, metadata=dict(metadata or {}),
            post_id=post_id, extra=extra,
        )  # fmt: skip

    def _claim(self, post_id: str) -> PostRun | None:
        try:
            post = self.journal.claim(
                owner=self.owner, post_id=post_id, lease_s=self.post_options.lease_s
            )
        except (LeaseHeldError, IllegalTransitionError) as exc:
            log.info("skipping post %s: %s", post_id, exc)
            return None
        if post is None:
            return None
        return PostRun(
            self.journal, post, owner=self.owner, clock=self.clock, rng=self.rng,
            policy=self.retry_policy, options=self.post_options,
        )  # fmt: skip

    def _prepare(self, run: PostRun, chunk_size: int | None) -> PlatformUpload | Post:
        """The platform's upload of a claimed post, or the post itself if it cannot start."""
        refusal = self._host_refusal(run.post.endpoint)
        if refusal is not None:  # waits for its host, without hashing the file first
            return run.deferred(refusal)
        try:
            file = run.open_file()
        except SteadypostError as exc:
            if isinstance(exc, JournalError):
                raise
            return run.failed(exc)
        post = run.post
        job = UploadJob(
            post=post, file=file, retry=self._retry_ctx(), chunk_size=chunk_size,
            default_chunk_size=self.chunk_size, checksum=self.checksum,
            server_info=self._info_cache.get(post.endpoint),
            answered=self._guard().answered(post.endpoint),
        )  # fmt: skip
        try:
            upload = self._platform(post).begin(job)
        except SteadypostError as exc:
            run.close_file()
            if isinstance(exc, JournalError):
                raise
            return run.failed(exc)
        assert run.file is not None
        run.hasher = FileHasher.start(run.file)
        return upload

    def _run_ended(self, run: PostRun, exc: BaseException) -> Post:
        """What an exception out of a post's run means; re-raises what the caller must see.

        * the post was cancelled or taken over meanwhile: that stands, quietly;
        * a bug (an exception that is not a :class:`SteadypostError`): the post
          waits with backoff like after any failed attempt, and fails after a
          few such runs; it is never put back due at once;
        * anything else (Ctrl-C, a cancelled task, the journal failing): the post
          is released, due again at once, and the exception goes on.
        """
        if isinstance(exc, IllegalTransitionError | LeaseHeldError):
            return run.lost()
        if isinstance(exc, Exception) and not isinstance(exc, SteadypostError):
            log.error("post %s: unexpected %s", run.post.post_id, type(exc).__name__,
                      exc_info=exc)  # fmt: skip
            error = InternalError(f"steadypost failed unexpectedly: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return run.failed(error)
        run.interrupted("interrupted")
        raise exc

    @staticmethod
    def _hashed(flow: Flow[UploadResult], hasher: FileHasher) -> Flow[UploadResult]:
        """``flow``'s result with the file's SHA-256 from ``hasher`` (started with the upload)."""
        try:
            result = yield from flow
            sha256 = yield FileSha256(hasher)
        finally:
            hasher.stop()  # a failed upload does not need the rest of the file read
        return replace(result, sha256=sha256)

    def _post_flow(self, run: PostRun, upload: PlatformUpload) -> Flow[Post]:
        """Upload the bytes, then publish if the platform has that step."""
        try:
            yield from self.status_pages.gate(run.post.endpoint, clock=self.clock,
                                              store=self._journal)  # fmt: skip
            assert run.hasher is not None, "_prepare starts the hasher"
            result = yield from self._hashed(upload.run(), run.hasher)
        except SteadypostError as exc:
            return self._conclude(run, exc)
        sha = result.sha256
        try:
            platform = self._platform(run.post)
        except SteadypostError as exc:
            return self._conclude(run, exc)
        if platform.publish(run.post, result.upload_url) is None:
            return run.succeeded(sha, upload.file.size)
        run.publishing(sha)

        def publish() -> Flow[CheckResult]:
            flow = platform.publish(run.post, result.upload_url)
            assert flow is not None
            return flow

        try:
            answer = yield from with_retries(publish, self._retry_ctx(), retry_if=self._resendable)
        except SteadypostError as exc:
            return run.publish_failed(exc)
        return run.published(answer)

    def _resendable(self, exc: BaseException) -> bool:
        """A publish is resent only when the server certainly did not act on it."""
        return (
            isinstance(exc, SteadypostError)
            and exc.outcome is Outcome.NOT_DELIVERED
            and is_transient(self.retry_policy, exc)
        )

    def _conclude(self, run: PostRun, exc: SteadypostError) -> Post:
        if isinstance(exc, IllegalTransitionError | LeaseHeldError):
            # Cancelled or taken over by another process meanwhile: its state stands.
            log.info("post %s: %s", run.post.post_id, exc)
            return self.journal.get(run.post.post_id)
        if isinstance(exc, JournalError):
            raise exc
        return run.failed(exc)

    def _pending(self) -> Iterator[str | Post]:
        """The due posts, lazily: an id to upload now, or a post deferred for its host.

        A post whose host refuses (circuit open, budget spent, status page) is
        rescheduled to the host's next time without being claimed or charged
        an attempt: a long outage costs one journal write per post per breaker
        period, not an upload run per post per wake-up.
        """
        for post in self.journal.due(now=self.clock()):
            if post.state not in _UPLOADABLE:
                continue
            refusal = self._host_refusal(post.endpoint)
            yield post.post_id if refusal is None else self._defer(post.post_id, refusal)

    def _defer(self, post_id: str, refusal: HostUnavailableError) -> Post:
        with self.journal.atomic():
            post = self.journal.get(post_id)
            if post.state not in (PostState.QUEUED, PostState.WAITING):
                return post  # someone claimed it meanwhile
            return self.journal.transition(
                post_id, PostState.WAITING, next_attempt_at=self.clock() + refusal.retry_after,
                last_error=str(refusal), event={"deferred": refusal.reason or str(refusal)},
            )  # fmt: skip

    # -- verification and cancelling --

    def _verifiable(self, everything: bool, post_ids: Collection[str] | None = None) -> list[Post]:
        posts = self.journal.list(state=PostState.UNCONFIRMED)
        if post_ids is not None:
            wanted = set(post_ids)
            posts = [p for p in posts if p.post_id in wanted]
        if everything:
            return posts
        now = self.clock()
        return [p for p in posts if (p.next_attempt_at or 0.0) <= now]

    def _verify_flow(self, post: Post) -> Flow[Post]:
        check = VerifyRun(
            self.journal, post, clock=self.clock, rng=self.rng, options=self.post_options
        )
        policy = replace(self.retry_policy, max_attempts=CHECK_ATTEMPTS, deadline_s=None)
        try:
            platform = self._platform(post)
            result = yield from with_retries(lambda: platform.check(post), self._retry_ctx(policy))
        except SteadypostError as exc:
            if isinstance(exc, JournalError):
                raise
            return check.check_failed(exc)
        return check.apply(result)

    def _cancel_flow(self, post_id: str) -> Flow[Post]:
        """Journal the cancellation first, then ask the server to drop the upload."""
        post = self.journal.get(post_id)
        if post.state.finished:
            return post
        post = self.journal.transition(post_id, PostState.CANCELLED, event={"by": "user"})
        if post.upload_url:
            try:
                terminate = self._platform(post).cancel(post)
                if terminate is not None:
                    yield from terminate
            except SteadypostError as exc:
                self.journal.record(
                    post_id, "note", {"message": f"server-side delete failed: {exc}"}
                )
        return post

    def _recorder(self, post: Post) -> EventRecorder:
        return EventRecorder(self.journal, post)
