"""``Uploader`` and ``AsyncUploader``: the thin drivers a creator tool calls.

Both build the same flows (:mod:`steadypost.platforms.tus`) and the same
journal bookkeeping (:mod:`steadypost.posting`); they only differ in how they
do I/O, so a behaviour tested through one holds for the other.

Two levels of API:

* ``upload(path, endpoint)``: one resumable transfer, no journal. Raises on
  failure; the error's ``outcome`` says whether it may have been processed.
* ``post(path, endpoint)``: journals the post first, then uploads it, and
  returns the journaled :class:`~steadypost.models.Post` in its new state
  (``confirmed``, ``unconfirmed``, ``waiting`` or ``failed``) instead of
  raising. ``resume_pending()`` finishes whatever an earlier run left.

Time, randomness and sleeping are parameters (``clock``, ``rng``, ``sleep``),
so tests never wait out a backoff for real.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from .digest import RunningDigest
from .drivers import run_async, run_sync
from .errors import (
    IllegalTransitionError,
    JournalError,
    LeaseHeldError,
    SteadypostError,
    UploadCancelledError,
)
from .files import file_sha256, snapshot_file
from .flow import RetryContext
from .journal import Journal, make_owner
from .models import FileIdentity, Post, PostState, Timeouts, UploadResult
from .observers import ProgressCallback, RunObserver, Tee, UploadObserver
from .platforms.tus import DEFAULT_CHUNK_SIZE, LocalFile, ServerInfo, TusOptions, TusUpload
from .policy import RetryPolicy
from .posting import PostOptions, PostRun
from .transport import DEFAULT_BLOCK_SIZE, AsyncHttp, SyncHttp, to_httpx_timeout

log = logging.getLogger("steadypost")

__all__ = ["AsyncUploader", "Uploader", "snapshot_file"]

_UPLOADABLE = (PostState.QUEUED, PostState.WAITING, PostState.UPLOADING)


class _UploaderBase:
    """Options, flow construction and post bookkeeping shared by both drivers."""

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

    def cancel(self) -> None:
        """Stop running uploads at the next block or wait. They stay resumable."""
        self._cancel.set()

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise UploadCancelledError("the upload was cancelled")

    def _retry_ctx(self) -> RetryContext:
        deadline_s = self.retry_policy.deadline_s
        return RetryContext(
            policy=self.retry_policy,
            clock=self.clock,
            rng=self.rng,
            deadline=None if deadline_s is None else self.clock() + deadline_s,
        )

    def _tus(
        self, endpoint: str, file: LocalFile, *, metadata: Mapping[str, str] | None,
        chunk_size: int | None, upload_url: str | None = None, known_offset: int = 0,
        expires_at: float | None = None, digest: RunningDigest | None = None,
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
            digest=digest if digest is not None else RunningDigest(),
        )  # fmt: skip

    @staticmethod
    def _result(value: UploadResult, obs: RunObserver) -> UploadResult:
        return UploadResult(
            upload_url=value.upload_url, size=value.size, offset=value.offset,
            sha256=value.sha256, bytes_sent=obs.bytes_sent, requests=obs.requests,
        )  # fmt: skip

    # -- journaled posts: everything but the I/O --

    def add(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
    ) -> Post:  # fmt: skip
        """Journal a post without uploading it (``resume_pending`` or the daemon will)."""
        file = snapshot_file(path)
        return self.journal.add(
            path=file.path, endpoint=endpoint, platform="tus",
            identity=FileIdentity(file.size, file.mtime_ns), metadata=dict(metadata or {}),
            post_id=post_id,
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

    def _prepare(self, run: PostRun, chunk_size: int | None) -> TusUpload | Post:
        """The flow for a claimed post, or the post itself if its file is unusable."""
        try:
            file = run.local_file()
            digest = run.digest(file)
        except SteadypostError as exc:
            if isinstance(exc, JournalError):
                raise
            return run.failed(exc)
        post = run.post
        metadata = {**post.metadata, "post_id": post.post_id}
        return self._tus(
            post.endpoint, file, metadata=metadata, chunk_size=chunk_size,
            upload_url=run.upload_url, known_offset=run.offset,
            expires_at=post.upload_expires_at, digest=digest,
        )  # fmt: skip

    def _conclude(
        self, run: PostRun, upload: TusUpload, outcome: UploadResult | SteadypostError
    ) -> Post:
        if isinstance(outcome, UploadResult):
            sha = outcome.sha256 or file_sha256(upload.file.path, upload.file.size)
            return run.succeeded(sha, upload.file.size)
        if isinstance(outcome, IllegalTransitionError | LeaseHeldError):
            # Cancelled or taken over by another process meanwhile: its state stands.
            log.info("post %s: %s", run.post.post_id, outcome)
            return self.journal.get(run.post.post_id)
        if isinstance(outcome, JournalError):
            raise outcome
        return run.failed(outcome)

    def _due_post_ids(self) -> list[str]:
        return [p.post_id for p in self.journal.due(now=self.clock()) if p.state in _UPLOADABLE]


class Uploader(_UploaderBase):
    """Uploads files to tus servers, blocking. Thread-safe for separate uploads.

    Pass your own ``client`` (an ``httpx.Client``) to share a connection pool,
    proxies or TLS settings; otherwise one pooled keep-alive client is made
    and closed with the uploader. Custom ``headers`` (e.g. ``Authorization``)
    go only to the endpoint's origin and to ``allowed_origins``. ``journal``
    defaults to the one in the platformdirs data dir (or ``$STEADYPOST_HOME``).
    """

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=to_httpx_timeout(self.timeouts))
        self._sleep = sleep or self._interruptible_sleep

    def _interruptible_sleep(self, seconds: float) -> None:
        self._cancel.wait(seconds)

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client and the journal if the uploader opened them."""
        if self._owns_client:
            self.client.close()
        self._close_journal()

    def _run(self, upload: TusUpload, obs: RunObserver, *extra: UploadObserver) -> UploadResult:
        observer = Tee(*extra, obs) if extra else obs
        http = SyncHttp(
            self.client, timeouts=self.timeouts, block_size=self.block_size,
            on_body=observer.on_body, check_cancelled=self._check_cancelled,
        )  # fmt: skip
        try:
            value = run_sync(
                upload.run(), http=http, sleep=self._sleep, observer=observer,
                check_cancelled=self._check_cancelled,
            )  # fmt: skip
        finally:
            upload.close()
        return self._result(value, obs)

    def upload(
        self,
        path: str | os.PathLike[str],
        endpoint: str,
        *,
        metadata: Mapping[str, str] | None = None,
        upload_url: str | None = None,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Upload ``path`` to the tus ``endpoint``; return when the server holds every byte.

        With ``upload_url`` (from an earlier, interrupted run), the upload is
        resumed from the server's offset; if that upload is gone or expired, a
        new one is begun. Nothing is journaled (see :meth:`post`). Raises a
        :class:`~steadypost.errors.SteadypostError`; its ``outcome`` says
        whether the bytes may have been processed.
        """
        file = snapshot_file(path)
        upload = self._tus(
            endpoint, file, metadata=metadata, chunk_size=chunk_size, upload_url=upload_url
        )
        return self._run(upload, RunObserver(file.size, on_progress, self._info_cache))

    def resume(
        self, upload_url: str, path: str | os.PathLike[str], *, endpoint: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
    ) -> UploadResult:  # fmt: skip
        """Finish the upload at ``upload_url`` (begun by steadypost or another tus client)."""
        return self.upload(
            path, endpoint or upload_url, upload_url=upload_url,
            chunk_size=chunk_size, on_progress=on_progress,
        )  # fmt: skip

    def terminate(self, upload_url: str, *, endpoint: str | None = None) -> None:
        """Ask the server to delete an upload (tus termination). Gone already is fine."""
        flow = self._tus(
            endpoint or upload_url, LocalFile("", 0, 0), metadata=None, chunk_size=None
        )
        http = SyncHttp(self.client, timeouts=self.timeouts)
        obs = RunObserver(0, None, self._info_cache)
        run_sync(flow.terminate(upload_url), http=http, sleep=self._sleep, observer=obs)

    # -- journaled posts --

    def post(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """Journal a post, then upload it; return the post in its new state.

        The post row is committed before the first request, its upload URL
        before the first byte, its offset after each chunk: a crash, a reboot
        or ``kill -9`` loses nothing, and :meth:`resume_pending` goes on from
        there. A bad file raises :class:`~steadypost.errors.FileProblemError`
        before anything is journaled; any later failure is journaled instead
        of raised: look at ``post.state`` and ``post.last_error``.
        """
        added = self.add(path, endpoint, metadata=metadata, post_id=post_id)
        return self.upload_post(added.post_id, chunk_size=chunk_size, on_progress=on_progress)

    def upload_post(
        self, post_id: str, *, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """Upload one journaled post now (even if its next attempt is later)."""
        run = self._claim(post_id)
        if run is None:
            return self.journal.get(post_id)
        prepared = self._prepare(run, chunk_size)
        if isinstance(prepared, Post):
            return prepared
        obs = RunObserver(prepared.file.size, on_progress, self._info_cache)
        try:
            outcome: UploadResult | SteadypostError = self._run(prepared, obs, run)
        except SteadypostError as exc:
            outcome = exc
        except BaseException:
            run.interrupted("interrupted")
            raise
        return self._conclude(run, prepared, outcome)

    def resume_pending(self, *, on_progress: ProgressCallback | None = None) -> list[Post]:
        """Upload every post whose time has come (queued, due waiting, or orphaned)."""
        done = []
        for post_id in self._due_post_ids():
            if self._cancel.is_set():
                break
            done.append(self.upload_post(post_id, on_progress=on_progress))
        return done


class AsyncUploader(_UploaderBase):
    """The asyncio twin of :class:`Uploader`: same options, same behaviour, awaitable methods.

    Journal writes are short SQLite transactions made from the event loop's
    thread (a few milliseconds each, one per chunk or request).
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(timeout=to_httpx_timeout(self.timeouts))
        self._sleep = sleep or self._interruptible_sleep

    async def _interruptible_sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._cancel.is_set() and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.25))

    async def __aenter__(self) -> AsyncUploader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client and the journal if the uploader opened them."""
        if self._owns_client:
            await self.client.aclose()
        self._close_journal()

    async def _run(
        self, upload: TusUpload, obs: RunObserver, *extra: UploadObserver
    ) -> UploadResult:
        observer = Tee(*extra, obs) if extra else obs
        http = AsyncHttp(
            self.client, timeouts=self.timeouts, block_size=self.block_size,
            on_body=observer.on_body, check_cancelled=self._check_cancelled,
        )  # fmt: skip
        try:
            value = await run_async(
                upload.run(), http=http, sleep=self._sleep, observer=observer,
                check_cancelled=self._check_cancelled,
            )  # fmt: skip
        finally:
            upload.close()
        return self._result(value, obs)

    async def upload(
        self,
        path: str | os.PathLike[str],
        endpoint: str,
        *,
        metadata: Mapping[str, str] | None = None,
        upload_url: str | None = None,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """See :meth:`Uploader.upload`."""
        file = snapshot_file(path)
        upload = self._tus(
            endpoint, file, metadata=metadata, chunk_size=chunk_size, upload_url=upload_url
        )
        return await self._run(upload, RunObserver(file.size, on_progress, self._info_cache))

    async def resume(
        self, upload_url: str, path: str | os.PathLike[str], *, endpoint: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
    ) -> UploadResult:  # fmt: skip
        """See :meth:`Uploader.resume`."""
        return await self.upload(
            path, endpoint or upload_url, upload_url=upload_url,
            chunk_size=chunk_size, on_progress=on_progress,
        )  # fmt: skip

    async def post(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """See :meth:`Uploader.post`."""
        added = self.add(path, endpoint, metadata=metadata, post_id=post_id)
        return await self.upload_post(added.post_id, chunk_size=chunk_size, on_progress=on_progress)

    async def upload_post(
        self, post_id: str, *, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """See :meth:`Uploader.upload_post`."""
        run = self._claim(post_id)
        if run is None:
            return self.journal.get(post_id)
        prepared = self._prepare(run, chunk_size)
        if isinstance(prepared, Post):
            return prepared
        obs = RunObserver(prepared.file.size, on_progress, self._info_cache)
        try:
            outcome: UploadResult | SteadypostError = await self._run(prepared, obs, run)
        except SteadypostError as exc:
            outcome = exc
        except BaseException:
            run.interrupted("interrupted")
            raise
        return self._conclude(run, prepared, outcome)

    async def resume_pending(self, *, on_progress: ProgressCallback | None = None) -> list[Post]:
        """See :meth:`Uploader.resume_pending`."""
        done = []
        for post_id in self._due_post_ids():
            if self._cancel.is_set():
                break
            done.append(await self.upload_post(post_id, on_progress=on_progress))
        return done
