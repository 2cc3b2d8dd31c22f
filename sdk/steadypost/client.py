"""``Uploader`` and ``AsyncUploader``: the thin drivers a creator tool calls.

Both build the same flows (:mod:`steadypost.platforms.tus`) and only differ in
how they do I/O, so a behaviour tested through one holds for the other.

    from steadypost import Uploader

    with Uploader(headers={"Authorization": f"Bearer {token}"}) as up:
        result = up.upload("clip.mp4", "https://uploads.example.com/files/")
        print(result.upload_url)

Time, randomness and sleeping are parameters (``clock``, ``rng``, ``sleep``),
so tests never wait out a backoff for real.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import stat
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from .digest import RunningDigest
from .drivers import run_async, run_sync
from .errors import FileProblemError, UploadCancelledError
from .events import OffsetAcknowledged, ServerDiscovered
from .flow import FileBody, Request, Response, RetryContext, Sleep
from .models import Progress, ProgressKind, Timeouts, UploadResult
from .platforms.tus import DEFAULT_CHUNK_SIZE, LocalFile, ServerInfo, TusOptions, TusUpload
from .policy import RetryPolicy
from .transport import DEFAULT_BLOCK_SIZE, AsyncHttp, SyncHttp, to_httpx_timeout

log = logging.getLogger("steadypost")

ProgressCallback = Callable[[Progress], None]


def snapshot_file(path: str | os.PathLike[str]) -> LocalFile:
    """``os.stat`` a file to upload, with a clear error for every bad case."""
    text = os.fspath(path)
    try:
        st = os.stat(text)
    except FileNotFoundError as exc:
        raise FileProblemError(f"{text}: no such file") from exc
    except OSError as exc:
        raise FileProblemError(f"{text}: cannot access the file ({exc.strerror})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise FileProblemError(f"{text} is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise FileProblemError(f"{text} is not a regular file")
    if not os.access(text, os.R_OK):
        raise FileProblemError(f"{text}: permission denied")
    return LocalFile(os.path.abspath(text), st.st_size, st.st_mtime_ns)


class _RunObserver:
    """Turns flow events into progress reports, logs and counters for one upload."""

    def __init__(
        self, total: int, on_progress: ProgressCallback | None, info_cache: dict[str, ServerInfo]
    ) -> None:
        self.total = total
        self.on_progress = on_progress
        self.info_cache = info_cache
        self.acknowledged = 0
        self.bytes_sent = 0
        self.requests = 0
        self._last_body: tuple[int, int] | None = None

    def _report(self, progress: Progress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)

    def on_exchange(
        self,
        request: Request,
        response: Response | None,
        error: BaseException | None,
        elapsed_s: float,
    ) -> None:
        self.requests += 1
        outcome = response.status if response is not None else f"failed: {error}"
        log.debug("%s %s -> %s (%.3f s)", request.method, request.url, outcome, elapsed_s)

    def on_wait(self, sleep: Sleep) -> None:
        message = f"{sleep.reason}, retrying in {sleep.seconds:.0f} s"
        log.info("%s", message)
        self._report(
            Progress(
                ProgressKind.WAIT,
                self.acknowledged,
                self.total,
                wait_s=sleep.seconds,
                message=message,
            )
        )

    def on_event(self, event: object) -> None:
        if isinstance(event, OffsetAcknowledged):
            self.acknowledged = event.offset
            self._report(Progress(ProgressKind.BYTES, event.offset, self.total, sent=event.offset))
        elif isinstance(event, ServerDiscovered):
            self.info_cache[event.endpoint] = event.info
        log.debug("event %s", event)

    def on_body(self, body: FileBody, position: int) -> None:
        key = id(body)
        previous = (
            self._last_body[1] if self._last_body and self._last_body[0] == key else body.offset
        )
        self.bytes_sent += position - previous
        self._last_body = (key, position)
        self._report(Progress(ProgressKind.BYTES, self.acknowledged, self.total, sent=position))


class _UploaderBase:
    """Options and flow construction shared by both drivers."""

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
        self.clock = clock
        self.rng = rng or random.Random()
        self._info_cache: dict[str, ServerInfo] = {}
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop the running upload(s) at the next block or wait. The upload stays resumable."""
        self._cancel.set()

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise UploadCancelledError("the upload was cancelled")

    def _flow(
        self,
        path: str | os.PathLike[str],
        endpoint: str,
        *,
        metadata: Mapping[str, str] | None,
        upload_url: str | None,
        chunk_size: int | None,
        known_offset: int = 0,
        expires_at: float | None = None,
    ) -> TusUpload:
        file = snapshot_file(path)
        options = TusOptions(
            chunk_size=chunk_size or self.chunk_size,
            headers=self.headers,
            allowed_origins=self.allowed_origins,
            metadata=MappingProxyType(dict(metadata or {})),
            checksum=self.checksum,
        )
        deadline_s = self.retry_policy.deadline_s
        retry = RetryContext(
            policy=self.retry_policy,
            clock=self.clock,
            rng=self.rng,
            deadline=None if deadline_s is None else self.clock() + deadline_s,
        )
        return TusUpload(
            endpoint,
            file,
            options,
            retry,
            info=self._info_cache.get(endpoint),
            upload_url=upload_url,
            known_offset=known_offset,
            expires_at=expires_at,
            digest=RunningDigest(),
        )

    @staticmethod
    def _result(upload: TusUpload, value: UploadResult, obs: _RunObserver) -> UploadResult:
        return UploadResult(
            upload_url=value.upload_url,
            size=value.size,
            offset=value.offset,
            sha256=value.sha256,
            bytes_sent=obs.bytes_sent,
            requests=obs.requests,
        )


class Uploader(_UploaderBase):
    """Uploads files to tus servers, blocking. Thread-safe for separate uploads.

    Pass your own ``client`` (an ``httpx.Client``) to share a connection pool,
    proxies or TLS settings; otherwise one pooled keep-alive client is made
    and closed with the uploader. Custom ``headers`` (e.g. ``Authorization``)
    go only to the endpoint's origin and to ``allowed_origins``.
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
        if self._owns_client:
            self.client.close()

    def _run(self, upload: TusUpload, on_progress: ProgressCallback | None) -> UploadResult:
        obs = _RunObserver(upload.file.size, on_progress, self._info_cache)
        http = SyncHttp(
            self.client,
            timeouts=self.timeouts,
            block_size=self.block_size,
            on_body=obs.on_body,
            check_cancelled=self._check_cancelled,
        )
        try:
            value = run_sync(
                upload.run(),
                http=http,
                sleep=self._sleep,
                observer=obs,
                check_cancelled=self._check_cancelled,
            )
        finally:
            upload.close()
        return self._result(upload, value, obs)

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
        """Upload ``path`` to the tus ``endpoint`` and return when the server holds every byte.

        With ``upload_url`` (from an earlier, interrupted run), the upload is
        resumed from the server's offset; if that upload is gone or expired, a
        new one is begun. Raises a :class:`~steadypost.errors.SteadypostError`;
        its ``outcome`` says whether the bytes may have been processed.
        """
        flow = self._flow(
            path, endpoint, metadata=metadata, upload_url=upload_url, chunk_size=chunk_size
        )
        return self._run(flow, on_progress)

    def resume(
        self,
        upload_url: str,
        path: str | os.PathLike[str],
        *,
        endpoint: str | None = None,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Finish the upload at ``upload_url`` (begun by steadypost or another tus client)."""
        return self.upload(
            path,
            endpoint or upload_url,
            upload_url=upload_url,
            chunk_size=chunk_size,
            on_progress=on_progress,
        )

    def terminate(self, upload_url: str, *, endpoint: str | None = None) -> None:
        """Ask the server to delete an upload (tus termination). Gone already is fine."""
        flow = TusUpload(
            endpoint or upload_url,
            LocalFile("", 0, 0),
            TusOptions(headers=self.headers, allowed_origins=self.allowed_origins),
            self._retry_ctx(),
        )
        obs = _RunObserver(0, None, self._info_cache)
        http = SyncHttp(self.client, timeouts=self.timeouts)
        run_sync(flow.terminate(upload_url), http=http, sleep=self._sleep, observer=obs)

    def _retry_ctx(self) -> RetryContext:
        return RetryContext(policy=self.retry_policy, clock=self.clock, rng=self.rng)


class AsyncUploader(_UploaderBase):
    """The asyncio twin of :class:`Uploader`: same options, same behaviour, awaitable methods."""

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
        if self._owns_client:
            await self.client.aclose()

    async def _run(self, upload: TusUpload, on_progress: ProgressCallback | None) -> UploadResult:
        obs = _RunObserver(upload.file.size, on_progress, self._info_cache)
        http = AsyncHttp(
            self.client,
            timeouts=self.timeouts,
            block_size=self.block_size,
            on_body=obs.on_body,
            check_cancelled=self._check_cancelled,
        )
        try:
            value = await run_async(
                upload.run(),
                http=http,
                sleep=self._sleep,
                observer=obs,
                check_cancelled=self._check_cancelled,
            )
        finally:
            upload.close()
        return self._result(upload, value, obs)

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
        flow = self._flow(
            path, endpoint, metadata=metadata, upload_url=upload_url, chunk_size=chunk_size
        )
        return await self._run(flow, on_progress)

    async def resume(
        self,
        upload_url: str,
        path: str | os.PathLike[str],
        *,
        endpoint: str | None = None,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """See :meth:`Uploader.resume`."""
        return await self.upload(
            path,
            endpoint or upload_url,
            upload_url=upload_url,
            chunk_size=chunk_size,
            on_progress=on_progress,
        )
