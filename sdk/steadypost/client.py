"""``Uploader`` and ``AsyncUploader``: what a creator tool calls.

Both are one-line pumps of the same flows (:mod:`steadypost.lifecycle` for
journaled posts, :mod:`steadypost.platforms` for the protocols): each public
method builds its operation's flow and hands it to the sync or the async
driver (:mod:`steadypost.drivers`), as httpx's ``Client`` and ``AsyncClient``
share a ``BaseClient``. Options and wiring are in
:class:`~steadypost._base.BaseUploader`. A behaviour tested through one holds
for the other.

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
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TypeVar, overload

from steadypost._base import BaseUploader, ProgressCallback, document_options
from steadypost.drivers import (
    AsyncClient,
    AsyncDriver,
    SyncClient,
    SyncDriver,
    default_async_client,
    default_sync_client,
)
from steadypost.drivers.files import snapshot_file
from steadypost.flow import Flow, NullObserver
from steadypost.lifecycle import upload as post_flows
from steadypost.lifecycle import verify as check_flows
from steadypost.lifecycle.group import PostGroup, Target
from steadypost.models import Post, UploadResult
from steadypost.platforms.base import Platform

__all__ = ["AsyncUploader", "Uploader", "snapshot_file"]

T = TypeVar("T")
PathLike = str | os.PathLike[str]


class Uploader(BaseUploader[SyncClient, Callable[[float], None]]):
    """Uploads videos, blocking. Thread-safe for separate uploads (one per thread is simplest).

    Every option is a keyword argument with a default; all of them are below::

        with Uploader(headers={"Authorization": "Bearer ..."}) as up:
            post = up.post("clip.mp4", "https://uploads.example.com/files/")
    """

    def _default_client(self) -> SyncClient:
        return default_sync_client(self.timeouts)

    def _default_sleep(self) -> Callable[[float], None]:
        return self._interruptible_sleep

    def _interruptible_sleep(self, seconds: float) -> None:
        self._cancel.wait(seconds)  # cancel() cuts it short

    def _drive(self, flow: Flow[T]) -> T:
        driver = SyncDriver(
            self.client, timeouts=self.timeouts, block_size=self.block_size, sleep=self._sleep,
            check_cancelled=self._check_cancelled, guard=self.guard(), clock=self.clock,
            limiter=self.rate_limiter, cancel=self.cancel,
        )  # fmt: skip
        return driver.run(flow, NullObserver())

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client and the journal if the uploader opened them."""
        if self._owns_client:
            self.client.close()
        self._close_journal()

    def upload(
        self, path: PathLike, endpoint: str, *, metadata: Mapping[str, str] | None = None,
        upload_url: str | None = None, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> UploadResult:  # fmt: skip
        """Upload ``path`` to the tus ``endpoint``; return when the server holds every byte.

        With ``upload_url`` (from an earlier, interrupted run), the upload is
        resumed from the server's offset; if that upload is gone or expired, a
        new one is begun. Nothing is journaled (see :meth:`post`). Raises a
        :class:`~steadypost.errors.SteadypostError`; its ``outcome`` says
        whether the bytes may have been processed.
        """
        return self._drive(
            self._upload_flow(
                path,
                endpoint,
                metadata=metadata,
                upload_url=upload_url,
                chunk_size=chunk_size,
                on_progress=on_progress,
            )
        )

    def resume(
        self, upload_url: str, path: PathLike, *, endpoint: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
    ) -> UploadResult:  # fmt: skip
        """Finish the upload at ``upload_url`` (begun by steadypost or another tus client)."""
        return self._drive(
            self._upload_flow(
                path,
                endpoint or upload_url,
                metadata=None,
                upload_url=upload_url,
                chunk_size=chunk_size,
                on_progress=on_progress,
            )
        )

    def terminate(self, upload_url: str, *, endpoint: str | None = None) -> None:
        """Ask the server to delete an upload (tus termination). Gone already is fine."""
        self._drive(self._terminate_flow(upload_url, endpoint))

    @overload
    def post(
        self, path: PathLike, endpoint: str, *, metadata: Mapping[str, str] | None = None,
        post_id: str | None = None, platform: Platform | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
        new: bool = False,
    ) -> Post: ...  # fmt: skip

    @overload
    def post(
        self, path: PathLike, *, platforms: Sequence[Platform | Target],
        metadata: Mapping[str, str] | None = None, group: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
        new: bool = False,
    ) -> PostGroup: ...  # fmt: skip

    def post(
        self, path: PathLike, endpoint: str | None = None, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        platform: Platform | None = None, platforms: Sequence[Platform | Target] | None = None,
        group: str | None = None, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None, new: bool = False,
    ) -> Post | PostGroup:  # fmt: skip
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

        With ``platforms=[...]`` instead of an endpoint (adapters, or
        :class:`~steadypost.Target` for an endpoint of your own), the video
        gets one post per platform, grouped (``post.group``), uploaded side by
        side: one platform's outage never holds back or duplicates the
        others. Returns a :class:`~steadypost.PostGroup`. Ctrl-C stops them
        all (the uploader is cancelled).
        """
        return self._drive(self._any_post_flow(
            path, endpoint, metadata=metadata, post_id=post_id, platform=platform,
            platforms=platforms, group=group, chunk_size=chunk_size, on_progress=on_progress,
            new=new,
        ))  # fmt: skip

    def upload_post(
        self, post_id: str, *, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """Upload one journaled post now (even if its next attempt is later).

        A post another process is working on is left alone (returned as is).
        """
        return self._drive(post_flows.upload_post(self, post_id, chunk_size=chunk_size,
                                                  on_progress=on_progress))  # fmt: skip

    def resume_pending(self, *, on_progress: ProgressCallback | None = None) -> list[Post]:
        """Upload every post whose time has come (queued, due waiting, or orphaned)."""
        return self._drive(post_flows.resume_pending(self, on_progress=on_progress))

    def verify_due(
        self, *, all: bool = False, post_ids: Collection[str] | None = None
    ) -> list[Post]:
        """Check the ``unconfirmed`` posts whose time has come (every one with ``all=True``).

        See :mod:`steadypost.lifecycle.verify` for what each answer leads to. A
        post sent back to ``queued`` is uploaded by the next :meth:`resume_pending`.
        """
        return self._drive(check_flows.verify_due(self, everything=all, post_ids=post_ids))

    def cancel_post(self, post_id: str) -> Post:
        """Cancel a post: journaled ``cancelled`` first, then the server-side upload is deleted."""
        return self._drive(check_flows.cancel_post(self, post_id))

    def server_offset(self, post_id: str) -> int | None:
        """Ask the server how many bytes of a post's upload it holds (tus ``HEAD``).

        It may be more than the journal's ``offset`` (what the server had acknowledged at
        the last checkpoint): a chunk cut short by Ctrl-C leaves its first bytes there.
        ``None`` when the post has no tus upload to ask about. Nothing is journaled.
        """
        return self._drive(self._server_offset_flow(post_id))


class AsyncUploader(BaseUploader[AsyncClient, Callable[[float], Awaitable[None]]]):
    """The asyncio twin of :class:`Uploader`: the same options and flows, awaitable methods.

    Journal writes are short SQLite transactions made from the event loop's
    thread (a few milliseconds each, one per chunk or request)::

        async with AsyncUploader(headers={"Authorization": f"Bearer {token}"}) as up:
            post = await up.post("clip.mp4", "https://uploads.example.com/files/")
    """

    def _default_client(self) -> AsyncClient:
        return default_async_client(self.timeouts)

    def _default_sleep(self) -> Callable[[float], Awaitable[None]]:
        return self._interruptible_sleep

    async def _interruptible_sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._cancel.is_set() and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.25))

    async def _drive(self, flow: Flow[T]) -> T:
        driver = AsyncDriver(
            self.client, timeouts=self.timeouts, block_size=self.block_size, sleep=self._sleep,
            check_cancelled=self._check_cancelled, guard=self.guard(), clock=self.clock,
            limiter=self.rate_limiter,
        )  # fmt: skip
        return await driver.run(flow, NullObserver())

    async def __aenter__(self) -> AsyncUploader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client and the journal if the uploader opened them."""
        if self._owns_client:
            await self.client.aclose()
        self._close_journal()

    async def upload(
        self, path: PathLike, endpoint: str, *, metadata: Mapping[str, str] | None = None,
        upload_url: str | None = None, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> UploadResult:  # fmt: skip
        """See :meth:`Uploader.upload`."""
        return await self._drive(self._upload_flow(path, endpoint, metadata=metadata,
                                 upload_url=upload_url, chunk_size=chunk_size,
                                 on_progress=on_progress))  # fmt: skip

    async def resume(
        self, upload_url: str, path: PathLike, *, endpoint: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
    ) -> UploadResult:  # fmt: skip
        """See :meth:`Uploader.resume`."""
        return await self._drive(self._upload_flow(path, endpoint or upload_url, metadata=None,
                                 upload_url=upload_url, chunk_size=chunk_size,
                                 on_progress=on_progress))  # fmt: skip

    async def terminate(self, upload_url: str, *, endpoint: str | None = None) -> None:
        """See :meth:`Uploader.terminate`."""
        await self._drive(self._terminate_flow(upload_url, endpoint))

    @overload
    async def post(
        self, path: PathLike, endpoint: str, *, metadata: Mapping[str, str] | None = None,
        post_id: str | None = None, platform: Platform | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
        new: bool = False,
    ) -> Post: ...  # fmt: skip

    @overload
    async def post(
        self, path: PathLike, *, platforms: Sequence[Platform | Target],
        metadata: Mapping[str, str] | None = None, group: str | None = None,
        chunk_size: int | None = None, on_progress: ProgressCallback | None = None,
        new: bool = False,
    ) -> PostGroup: ...  # fmt: skip

    async def post(
        self, path: PathLike, endpoint: str | None = None, *,
        metadata: Mapping[str, str] | None = None, post_id: str | None = None,
        platform: Platform | None = None, platforms: Sequence[Platform | Target] | None = None,
        group: str | None = None, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None, new: bool = False,
    ) -> Post | PostGroup:  # fmt: skip
        """See :meth:`Uploader.post` (a cancelled task stops every post of a group)."""
        return await self._drive(self._any_post_flow(
            path, endpoint, metadata=metadata, post_id=post_id, platform=platform,
            platforms=platforms, group=group, chunk_size=chunk_size, on_progress=on_progress,
            new=new,
        ))  # fmt: skip

    async def upload_post(
        self, post_id: str, *, chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Post:  # fmt: skip
        """See :meth:`Uploader.upload_post`."""
        return await self._drive(post_flows.upload_post(self, post_id, chunk_size=chunk_size,
                                                        on_progress=on_progress))  # fmt: skip

    async def resume_pending(self, *, on_progress: ProgressCallback | None = None) -> list[Post]:
        """See :meth:`Uploader.resume_pending`."""
        return await self._drive(post_flows.resume_pending(self, on_progress=on_progress))

    async def verify_due(
        self, *, all: bool = False, post_ids: Collection[str] | None = None
    ) -> list[Post]:
        """See :meth:`Uploader.verify_due`."""
        return await self._drive(check_flows.verify_due(self, everything=all, post_ids=post_ids))

    async def cancel_post(self, post_id: str) -> Post:
        """See :meth:`Uploader.cancel_post`."""
        return await self._drive(check_flows.cancel_post(self, post_id))

    async def server_offset(self, post_id: str) -> int | None:
        """See :meth:`Uploader.server_offset`."""
        return await self._drive(self._server_offset_flow(post_id))


document_options(Uploader, client="httpx.Client", sleep="Callable[[float], None]")
document_options(AsyncUploader, client="httpx.AsyncClient",
                 sleep="Callable[[float], Awaitable[None]]")  # fmt: skip
