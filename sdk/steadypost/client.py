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
import os
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

import httpx

from ._clients import default_async_client, default_client
from ._fileio import OpenedFile
from .digest import FileHasher
from .drivers import AsyncDriver, SyncDriver
from .files import snapshot_file
from .flow import Flow
from .models import LocalFile, Post, UploadResult
from .observers import ProgressCallback, Tee, UploadObserver
from .platforms.base import Platform
from .uploader_core import UploaderCore

__all__ = ["AsyncUploader", "Uploader", "snapshot_file"]

T = TypeVar("T")


class Uploader(UploaderCore):
    """Uploads videos to tus servers, blocking. Thread-safe for separate uploads.

    Pass your own ``client`` (an ``httpx.Client``) to share a connection pool,
    proxies or TLS settings; otherwise one pooled keep-alive client is made
    and closed with the uploader. Custom ``headers`` (e.g. ``Authorization``)
    go only to the endpoint's origin and to ``allowed_origins``. ``journal``
    defaults to the one in the platformdirs data dir (or ``$STEADYPOST_HOME``).
    Every option of :class:`~steadypost.uploader_core.UploaderCore` applies.
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
        self.client = client or default_client(self.timeouts)
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

    def _drive(self, flow: Flow[T], observer: UploadObserver, file: OpenedFile | None = None) -> T:
        driver = SyncDriver(
            self.client, timeouts=self.timeouts, block_size=self.block_size, sleep=self._sleep,
            check_cancelled=self._check_cancelled, guard=self._guard(), clock=self.clock,
            limiter=self.rate_limiter,
        )  # fmt: skip
        return driver.run(flow, observer, file)

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
        obs = self._observer(file.size, on_progress)
        opened = OpenedFile(file.path, file.identity)
        try:
            flow = self._hashed(upload.run(), FileHasher.start(opened))
            return self._result(self._drive(flow, obs, opened), obs)
        finally:
            opened.release()

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
        tus = self._tus(endpoint or upload_url, LocalFile("", 0, 0), metadata=None, chunk_size=None)
        self._drive(tus.terminate(upload_url), self._observer(0, None))

    # -- journaled posts --

    def post(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        platform: Platform | None = None, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None, new: bool = False,
    ) -> Post:  # fmt: skip
        """Journal a post, then upload (and publish) it; return the post in its new state.

        The post row is committed before the first request, its upload URL
        before the first byte, its offset after each chunk: a crash, a reboot
        or ``kill -9`` loses nothing, and :meth:`resume_pending` goes on from
        there. A bad file raises :class:`~steadypost.errors.FileProblemError`
        before anything is journaled; any later failure is journaled instead
        of raised: look at ``post.state`` and ``post.last_error``.

        A file that already has a post for this site and account (see
        :meth:`add`) is not posted again: that post goes on (or is returned as
        it is, if confirmed, unconfirmed or uploaded by another process right
        now). ``new=True`` posts it again on purpose.
        """
        added = self.add(path, endpoint, metadata=metadata, post_id=post_id, platform=platform,
                         new=new)
        return self.upload_post(added.post_id, chunk_size=chunk_size, on_progress=on_progress)

    def upload_post(
        self, post_id: str, *, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """Upload one journaled post now (even if its next attempt is later).

        A post another process is working on is left alone (returned as is).
        """
        run = self._claim(post_id)
        if run is None:
            return self.journal.get(post_id)
        upload = self._prepare(run, chunk_size)
        if isinstance(upload, Post):
            return upload
        observer = Tee(run, self._observer(upload.file.size, on_progress))
        try:
            return self._drive(self._post_flow(run, upload), observer, run.file)
        except BaseException as exc:
            return self._run_ended(run, exc)
        finally:
            run.close_file()

    def resume_pending(self, *, on_progress: ProgressCallback | None = None) -> list[Post]:
        """Upload every post whose time has come (queued, due waiting, or orphaned)."""
        done = []
        for item in self._pending():
            if self._cancel.is_set():
                break
            if isinstance(item, str):
                item = self.upload_post(item, on_progress=on_progress)
            done.append(item)
        return done

    def verify_due(
        self, *, all: bool = False, post_ids: Collection[str] | None = None
    ) -> list[Post]:
        """Check the ``unconfirmed`` posts whose time has come (every one with ``all=True``).

        See :mod:`steadypost.verify` for what each answer leads to. A post
        sent back to ``queued`` is uploaded by the next :meth:`resume_pending`.
        """
        return [
            self._drive(self._verify_flow(post), self._recorder(post))
            for post in self._verifiable(all, post_ids)
        ]

    def cancel_post(self, post_id: str) -> Post:
        """Cancel a post: journaled ``cancelled`` first, then the server-side upload is deleted."""
        post = self.journal.get(post_id)
        return self._drive(self._cancel_flow(post_id), self._recorder(post))


class AsyncUploader(UploaderCore):
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
        self.client = client or default_async_client(self.timeouts)
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

    async def _drive(
        self, flow: Flow[T], observer: UploadObserver, file: OpenedFile | None = None
    ) -> T:
        driver = AsyncDriver(
            self.client, timeouts=self.timeouts, block_size=self.block_size, sleep=self._sleep,
            check_cancelled=self._check_cancelled, guard=self._guard(), clock=self.clock,
            limiter=self.rate_limiter,
        )  # fmt: skip
        return await driver.run(flow, observer, file)

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
        obs = self._observer(file.size, on_progress)
        opened = OpenedFile(file.path, file.identity)
        try:
            flow = self._hashed(upload.run(), FileHasher.start(opened))
            return self._result(await self._drive(flow, obs, opened), obs)
        finally:
            opened.release()

    async def resume(
        self, upload_url: str, path: str | os.PathLike[str], *, endpoint: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
    ) -> UploadResult:  # fmt: skip
        """See :meth:`Uploader.resume`."""
        return await self.upload(
            path, endpoint or upload_url, upload_url=upload_url,
            chunk_size=chunk_size, on_progress=on_progress,
        )  # fmt: skip

    async def terminate(self, upload_url: str, *, endpoint: str | None = None) -> None:
        """See :meth:`Uploader.terminate`."""
        tus = self._tus(endpoint or upload_url, LocalFile("", 0, 0), metadata=None, chunk_size=None)
        await self._drive(tus.terminate(upload_url), self._observer(0, None))

    async def post(
        self, path: str | os.PathLike[str], endpoint: str, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        platform: Platform | None = None, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None, new: bool = False,
    ) -> Post:  # fmt: skip
        """See :meth:`Uploader.post`."""
        added = self.add(path, endpoint, metadata=metadata, post_id=post_id, platform=platform,
                         new=new)
        return await self.upload_post(added.post_id, chunk_size=chunk_size, on_progress=on_progress)

    async def upload_post(
        self, post_id: str, *, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """See :meth:`Uploader.upload_post`."""
        run = self._claim(post_id)
        if run is None:
            return self.journal.get(post_id)
        upload = self._prepare(run, chunk_size)
        if isinstance(upload, Post):
            return upload
        observer = Tee(run, self._observer(upload.file.size, on_progress))
        try:
            return await self._drive(self._post_flow(run, upload), observer, run.file)
        except BaseException as exc:
            return self._run_ended(run, exc)
        finally:
            run.close_file()

    async def resume_pending(self, *, on_progress: ProgressCallback | None = None) -> list[Post]:
        """See :meth:`Uploader.resume_pending`."""
        done = []
        for item in self._pending():
            if self._cancel.is_set():
                break
            if isinstance(item, str):
                item = await self.upload_post(item, on_progress=on_progress)
            done.append(item)
        return done

    async def verify_due(
        self, *, all: bool = False, post_ids: Collection[str] | None = None
    ) -> list[Post]:
        """See :meth:`Uploader.verify_due`."""
        return [
            await self._drive(self._verify_flow(post), self._recorder(post))
            for post in self._verifiable(all, post_ids)
        ]

    async def cancel_post(self, post_id: str) -> Post:
        """See :meth:`Uploader.cancel_post`."""
        post = self.journal.get(post_id)
        return await self._drive(self._cancel_flow(post_id), self._recorder(post))
