"""The only code that does I/O for flows: pump them, send their requests, read the file.

* :mod:`.pump`: :class:`SyncDriver` / :class:`AsyncDriver`, which carry out a
  flow's effects (requests through the host guard, waits, nested flows);
* :mod:`.http`: one request over httpx, every httpx error translated, a
  whole-exchange deadline; :mod:`.clients`: the uploader's own httpx clients;
  :mod:`.blocks`: their sockets send request bodies' file blocks themselves
  (``sendfile``, one reused buffer under TLS);
* :mod:`.files`: the video file, opened once per run, and its SHA-256;
* :mod:`.observers`: progress for the caller, and a fan-out.
"""

from steadypost.drivers.pump import (
    PROCESS_RATE_LIMITER,
    AsyncClient,
    AsyncDriver,
    Guard,
    SyncClient,
    SyncDriver,
    default_async_client,
    default_sync_client,
)

__all__ = [
    "PROCESS_RATE_LIMITER",
    "AsyncClient",
    "AsyncDriver",
    "Guard",
    "SyncClient",
    "SyncDriver",
    "default_async_client",
    "default_sync_client",
]
