"""What ``Uploader`` and ``AsyncUploader`` share: every option, and the wiring of the flows.

:class:`BaseUploader` holds the options (journal, retry policy, timeouts,
hosts, ...), builds platform adapters with the account's credentials, and
builds each operation's flow; it is the :class:`~steadypost.lifecycle.wiring.Wiring`
the post flows see. The two public classes (:mod:`steadypost.client`) add
only a driver: how the flows' I/O is done.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from steadypost.drivers.files import FileHasher, OpenedFile, snapshot_file
from steadypost.drivers.http import DEFAULT_BLOCK_SIZE
from steadypost.drivers.observers import RunObserver
from steadypost.errors import AuthorizationError, Outcome, SteadypostError, UploadCancelledError
from steadypost.flow import Drive, Flow, RetryContext
from steadypost.hosts import HostGuard, HostRegistry, default_registry
from steadypost.hosts.ratelimit import SharedRateLimiter
from steadypost.hosts.statuspage import StatusPages
from steadypost.journal import JOURNAL_ENV, AddResult, Journal, make_owner
from steadypost.lifecycle import upload as post_flows
from steadypost.lifecycle.group import (
    GROUP_KEY,
    PostGroup,
    Target,
    as_targets,
    group_id_for,
    post_group,
)
from steadypost.lifecycle.options import PostOptions
from steadypost.lifecycle.upload import hashed
from steadypost.models import LocalFile, Post, Progress, Timeouts, UploadResult
from steadypost.paths import default_journal_path
from steadypost.platforms.base import Platform, TokenRequest
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.oauth import OAuthRefresh
from steadypost.platforms.registry import platform_for
from steadypost.platforms.tus import DEFAULT_CHUNK_SIZE, ServerInfo, TusOptions, TusUpload
from steadypost.platforms.tus.adapters import TusPlatform
from steadypost.policy import RetryPolicy

ClientT = TypeVar("ClientT")
SleepT = TypeVar("SleepT")
ProgressCallback = Callable[[Progress], None]
TokenProvider = Callable[[TokenRequest], "str | OAuthRefresh | None"]
"""Returns a valid access token for a post's platform account (``None``: use ``headers``),
or an :class:`~steadypost.platforms.oauth.OAuthRefresh` the adapter refreshes itself."""


class BaseUploader(Generic[ClientT, SleepT]):
    """The options every uploader takes (all keyword-only, each with a named default).

    ``client``
        Your own ``httpx.Client`` (``httpx.AsyncClient`` for the async
        uploader) to share a connection pool, proxies or TLS settings;
        otherwise one pooled keep-alive client is made and closed with the
        uploader.
    ``sleep``
        How to wait (a test passes a fake clock's); by default a wait that
        :meth:`cancel` cuts short.
    ``headers``
        Your own headers (e.g. ``Authorization``), sent only to the endpoint's
        origin and to ``allowed_origins`` (origins such as
        ``"https://cdn.example.com"`` that may get them too).
    ``chunk_size``
        Bytes per request (64 MiB); memory use does not depend on it.
    ``retry``
        A :class:`~steadypost.RetryPolicy`: backoff, attempts, deadline,
        ``Retry-After`` cap, the wire bound.
    ``timeouts``
        A :class:`~steadypost.Timeouts`: every request has all of them.
    ``checksum``
        Use the tus checksum extension when the server offers it.
    ``block_size``
        Bytes read from the file at a time.
    ``journal``
        The :class:`~steadypost.Journal`, or what to open one from: a file
        path, or a ``postgresql://`` URL for a journal shared by a fleet of
        daemons (``pip install 'steadypost[postgres]'``). By default
        ``$STEADYPOST_JOURNAL``, else the file in the platformdirs data dir (or
        ``$STEADYPOST_HOME``) that the CLI and the daemon use too. Pass
        ``Journal(path)`` to keep yours apart.
    ``post_options``
        :class:`~steadypost.PostOptions`: lease, verification window, ...
    ``clock``, ``rng``
        UTC epoch seconds, and the random source of every jittered wait.
    ``hosts``
        The :class:`~steadypost.hosts.HostRegistry` of per-host circuit
        breakers and retry budgets; by default every uploader of the process
        on the same journal shares one.
    ``status_pages``
        Upload origin → its platform's Statuspage JSON URL (or a
        :class:`~steadypost.StatusPages`): posts wait while it reports a
        major outage.
    ``token_provider``
        Called with a :class:`~steadypost.TokenRequest` each time a post's
        platform adapter is built (cache and refresh OAuth tokens there);
        returns the access token to send as ``Authorization: Bearer``, or
        ``None`` to use ``headers``, or an
        :class:`~steadypost.platforms.oauth.OAuthRefresh` (the same object each
        time for an account) that adapters such as YouTube's refresh
        themselves, also after a 401 mid-upload. Tokens are never journaled or
        logged.
    """

    def __init__(
        self,
        *,
        client: ClientT | None = None,
        sleep: SleepT | None = None,
        headers: Mapping[str, str] | None = None,
        allowed_origins: frozenset[str] | set[str] | tuple[str, ...] = (),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        checksum: bool = True,
        block_size: int = DEFAULT_BLOCK_SIZE,
        journal: Journal | str | os.PathLike[str] | None = None,
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
        self._journal = journal if isinstance(journal, Journal) else None
        self._journal_target = None if isinstance(journal, Journal) else journal
        self._owns_journal = not isinstance(journal, Journal)
        self._info_cache: dict[str, ServerInfo] = {}
        self._cancel = threading.Event()
        self._hosts = hosts
        self.status_pages = (
            status_pages if isinstance(status_pages, StatusPages) else StatusPages(status_pages)
        )
        self.token_provider = token_provider
        # Documented per-token rate limits (TikTok), counted in the journal by every process.
        self.rate_limiter = SharedRateLimiter(lambda: self.journal)
        self._owns_client = client is None
        self.client: ClientT = client if client is not None else self._default_client()
        self._sleep: SleepT = sleep if sleep is not None else self._default_sleep()

    __init__.__doc__ = """Every option, keyword-only, each with its default (see the class)."""

    def _default_client(self) -> ClientT:
        raise NotImplementedError

    def _default_sleep(self) -> SleepT:
        raise NotImplementedError

    # -- the journal and the hosts --

    @property
    def journal(self) -> Journal:
        """The journal of posts (opened at the default location on first use)."""
        if self._journal is None:
            self._journal = Journal(self._journal_target, clock=self.clock)
        return self._journal

    @property
    def host_store(self) -> Journal | None:
        """Where breaker and status-page state is shared: the journal, once open."""
        return self._journal

    def _close_journal(self) -> None:
        if self._owns_journal and self._journal is not None:
            self._journal.close()
            self._journal = None

    @property
    def hosts(self) -> HostRegistry:
        """The per-host circuit breakers and retry budgets these uploads share."""
        if self._hosts is None:
            if self._journal is None and (self._journal_target or os.environ.get(JOURNAL_ENV)):
                self.journal  # noqa: B018 - a named journal is opened to know its registry
            path = self._journal.path if self._journal is not None else default_journal_path()
            self._hosts = default_registry(path, self.clock)
        return self._hosts

    def guard(self) -> HostGuard:
        """What the drivers ask before each request (breaker state kept in the journal)."""
        cap = self.retry_policy.retry_after_cap_s
        return self.hosts.guard(store=self._journal, retry_after_cap_s=cap)

    # -- stopping --

    def cancel(self) -> None:
        """Stop running uploads at the next block or wait. They stay resumable."""
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise UploadCancelledError("the upload was cancelled")

    # -- what the flows are built with --

    def retry_ctx(self, policy: RetryPolicy | None = None) -> RetryContext:
        policy = policy or self.retry_policy
        deadline_s = policy.deadline_s
        deadline = None if deadline_s is None else self.clock() + deadline_s
        return RetryContext(policy=policy, clock=self.clock, rng=self.rng, deadline=deadline)

    def server_info(self, endpoint: str) -> ServerInfo | None:
        return self._info_cache.get(endpoint)

    def tus(
        self, endpoint: str, file: LocalFile, *, metadata: Mapping[str, str] | None,
        chunk_size: int | None, upload_url: str | None = None,
    ) -> TusUpload:  # fmt: skip
        options = TusOptions(
            chunk_size=chunk_size or self.chunk_size, headers=self.headers,
            allowed_origins=self.allowed_origins, metadata=MappingProxyType(dict(metadata or {})),
            checksum=self.checksum,
        )  # fmt: skip
        return TusUpload(
            endpoint, file, options, self.retry_ctx(), info=self.server_info(endpoint),
            upload_url=upload_url, answered=self.guard().answered(endpoint),
        )  # fmt: skip

    def observer(
        self, total: int, on_progress: ProgressCallback | None, *, post_id: str = ""
    ) -> RunObserver:
        guard = self.guard()

        def answered(url: str) -> None:
            guard.mark_answered(url, self.clock())

        return RunObserver(total, on_progress, self._info_cache, on_answered=answered,
                           post_id=post_id)  # fmt: skip

    def platform(self, post: Post) -> Platform:
        """The post's adapter, rebuilt from what the journal kept, with the account's token."""
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

    # -- journaling a post (plain journal writes: the same for both drivers) --

    def add(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        platform: Platform | None = None, new: bool = False, group: str | None = None,
    ) -> Post:  # fmt: skip
        """Journal a post, not uploading it yet; a file posted before joins its post.

        See :meth:`add_or_join`. ``platform``: tus, ``PostApiPlatform``, ``TikTokPlatform``,
        ``VimeoPlatform`` (``endpoint``: the API base); its settings are journaled, not tokens.
        """
        return self.add_or_join(path, endpoint, metadata=metadata, post_id=post_id,
                                platform=platform, new=new, group=group).post  # fmt: skip

    def add_or_join(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        platform: Platform | None = None, new: bool = False, group: str | None = None,
    ) -> AddResult:  # fmt: skip
        """:meth:`add`, saying whether the post was made or joined (an ``AddResult``).

        A file with a post for this site and account (not failed or cancelled)
        gets that post back, ``joined=True``, and nothing is journaled; ``new=True``
        posts it again. The account is the adapter's ``account`` label, never
        the token: a refreshed token must not post the video twice. ``group``
        tags a new post with a group id (``post.group``; see :meth:`add_group`).
        """
        return self._add_or_join(snapshot_file(path), endpoint, metadata=metadata,
                                 post_id=post_id, platform=platform, new=new,
                                 group=group)  # fmt: skip

    def add_group(
        self, path: str | os.PathLike[str], platforms: Sequence[Platform | Target], *,
        metadata: Mapping[str, str] | None = None, group: str | None = None, new: bool = False,
    ) -> tuple[str, list[AddResult]]:  # fmt: skip
        """Journal one post of ``path`` per platform, tagged with one group id.

        Each post joins the file's earlier post for that platform and account
        as :meth:`add_or_join` does (``new=True``: post again). ``group``
        defaults to the file's own group id (see
        :func:`~steadypost.lifecycle.group.group_id_for`). Returns the group
        id and each target's ``AddResult``, in order.
        """
        targets = as_targets(platforms)
        file = snapshot_file(path)
        group_id = group or group_id_for(file.path, file.identity)
        return group_id, [
            self._add_or_join(file, t.resolved_endpoint(), metadata=metadata, post_id=None,
                              platform=t.platform, new=new, group=group_id)
            for t in targets
        ]  # fmt: skip

    def _add_or_join(
        self, file: LocalFile, endpoint: str, *, metadata: Mapping[str, str] | None,
        post_id: str | None, platform: Platform | None, new: bool, group: str | None = None,
    ) -> AddResult:  # fmt: skip
        name = platform.name if platform is not None else "tus"
        extra: dict[str, object] = {}
        if platform is not None:
            extra["platform"] = dict(platform.config())
        if group is not None:
            extra[GROUP_KEY] = group
        return self.journal.add_or_join(
            path=file.path, endpoint=endpoint, platform=name, identity=file.identity,
            metadata=dict(metadata or {}), post_id=post_id, extra=extra or None, new=new,
        )  # fmt: skip

    # -- the operations as flows (the public classes pump them) --

    def _upload_flow(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None, upload_url: str | None, chunk_size: int | None,
        on_progress: ProgressCallback | None,
    ) -> Flow[UploadResult]:  # fmt: skip
        """One resumable transfer, nothing journaled."""
        file = snapshot_file(path)
        upload = self.tus(endpoint, file, metadata=metadata, chunk_size=chunk_size,
                          upload_url=upload_url)  # fmt: skip
        observer = self.observer(file.size, on_progress)
        opened = OpenedFile(file.path, file.identity)
        try:
            flow = hashed(upload.run(), FileHasher.start(opened))
            value: UploadResult = yield Drive(flow, observer, opened)
        finally:
            opened.release()
        return UploadResult(
            upload_url=value.upload_url, size=value.size, offset=value.offset,
            sha256=value.sha256, bytes_sent=observer.bytes_sent, requests=observer.requests,
        )  # fmt: skip

    def _terminate_flow(self, upload_url: str, endpoint: str | None) -> Flow[None]:
        """tus termination: ``DELETE`` the upload (already gone is fine)."""
        tus = self.tus(endpoint or upload_url, LocalFile("", 0, 0), metadata=None, chunk_size=None)
        yield Drive(tus.terminate(upload_url), self.observer(0, None))

    def _server_offset_flow(self, post_id: str) -> Flow[int | None]:
        """tus ``HEAD`` on a post's upload: the bytes the server holds (``None``: not known).

        For the posts whose bytes travel by tus to an upload URL the journal has (the
        ``tus`` and ``post-api`` platforms); other platforms have no such question.
        """
        post = self.journal.get(post_id)
        adapter = self.platform(post)
        if post.upload_url is None or not isinstance(adapter, TusPlatform):
            return None
        result = yield Drive(TusPlatform.check(adapter, post), self.observer(0, None))
        offset = result.detail.get("offset")
        return offset if isinstance(offset, int) else None

    def _post_flow(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None, post_id: str | None, platform: Platform | None,
        chunk_size: int | None, on_progress: ProgressCallback | None, new: bool,
    ) -> Flow[Post]:  # fmt: skip
        added = self.add_or_join(path, endpoint, metadata=metadata, post_id=post_id,
                                 platform=platform, new=new)  # fmt: skip
        return (yield from post_flows.post(self, added, chunk_size=chunk_size,
                                           on_progress=on_progress))  # fmt: skip

    def _any_post_flow(
        self, path: str | os.PathLike[str], endpoint: str | None, *,
        metadata: Mapping[str, str] | None, post_id: str | None, platform: Platform | None,
        platforms: Sequence[Platform | Target] | None, group: str | None,
        chunk_size: int | None, on_progress: ProgressCallback | None, new: bool,
    ) -> Flow[Post | PostGroup]:  # fmt: skip
        """``post()``'s flow: one post to ``endpoint``, or a group to ``platforms``."""
        if platforms is None:
            if endpoint is None:
                raise ValueError("post() needs an endpoint, or platforms=[...]")
            if group is not None:
                raise ValueError("group= goes with platforms=[...]")
            return (yield from self._post_flow(
                path, endpoint, metadata=metadata, post_id=post_id, platform=platform,
                chunk_size=chunk_size, on_progress=on_progress, new=new))  # fmt: skip
        if endpoint is not None or platform is not None or post_id is not None:
            raise ValueError(
                "platforms=[...] replaces endpoint, platform and post_id "
                "(use Target(platform, endpoint) for an endpoint of your own)"
            )
        return (yield from self._group_flow(path, platforms, metadata=metadata, group=group,
                                            chunk_size=chunk_size, on_progress=on_progress,
                                            new=new))  # fmt: skip

    def _group_flow(
        self, path: str | os.PathLike[str], platforms: Sequence[Platform | Target], *,
        metadata: Mapping[str, str] | None, group: str | None, chunk_size: int | None,
        on_progress: ProgressCallback | None, new: bool,
    ) -> Flow[PostGroup]:  # fmt: skip
        group_id, added = self.add_group(path, platforms, metadata=metadata, group=group, new=new)
        return (yield from post_group(self, group_id, added, chunk_size=chunk_size,
                                      on_progress=on_progress))  # fmt: skip

def document_options(cls: type[BaseUploader[Any, Any]], *, client: str, sleep: str) -> None:
    """Make ``help(cls)`` show every option: the signature with ``client`` and ``sleep``'s
    real types (not the base's type variables) and, after ``cls``'s own text, what each
    option does (:class:`BaseUploader`'s docstring)."""
    import inspect

    signature = inspect.signature(BaseUploader.__init__)
    concrete = {"client": f"{client} | None", "sleep": f"{sleep} | None"}
    params = [p.replace(annotation=concrete.get(p.name, p.annotation))
              for p in signature.parameters.values() if p.name != "self"]  # fmt: skip
    cls.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    options = inspect.cleandoc(BaseUploader.__doc__ or "")
    cls.__doc__ = f"{inspect.cleandoc(cls.__doc__ or '')}\n\n{options}\n"
