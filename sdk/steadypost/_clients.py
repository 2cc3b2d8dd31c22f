"""The httpx clients an uploader makes for itself when the caller passes none.

They behave like ``httpx.Client()`` / ``httpx.AsyncClient()`` with the
uploader's timeouts, with one difference: the verified TLS context (loading
certifi's CA bundle, about 30 ms of CPU) is built on the first ``https://``
request instead of up front. An uploader talking to a plain-HTTP tus server
(a NAS, a studio's ingest box, the test server) never pays for it, and the
CLI starts an upload sooner. TLS itself is unchanged: the same
``httpx.HTTPTransport`` defaults, certificates verified, ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` honoured.

httpx ignores proxy environment variables (``HTTPS_PROXY``, ``ALL_PROXY``,
...) once a client is given its own transport, so when any is set the
uploader makes a plain ``httpx.Client`` instead, and the proxies apply.
"""

from __future__ import annotations

import threading
import urllib.request

import httpx

from .models import Timeouts
from .transport import to_httpx_timeout


class _LazyTLSTransport(httpx.BaseTransport):
    """``http://`` through one pool; ``https://`` through a verified pool made on first use."""

    def __init__(self) -> None:
        # verify=False only skips loading CA certificates: this pool never speaks TLS,
        # because https:// requests never reach it.
        self._plain = httpx.HTTPTransport(verify=False)
        self._tls: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def _secure(self) -> httpx.HTTPTransport:
        with self._lock:
            if self._tls is None:
                self._tls = httpx.HTTPTransport()
            return self._tls

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            return self._secure().handle_request(request)
        return self._plain.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


class _LazyTLSAsyncTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`_LazyTLSTransport` (one event loop: no lock needed)."""

    def __init__(self) -> None:
        self._plain = httpx.AsyncHTTPTransport(verify=False)
        self._tls: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            if self._tls is None:
                self._tls = httpx.AsyncHTTPTransport()
            return await self._tls.handle_async_request(request)
        return await self._plain.handle_async_request(request)

    async def aclose(self) -> None:
        await self._plain.aclose()
        if self._tls is not None:
            await self._tls.aclose()


def _proxies_configured() -> bool:
    """Whether the environment names a proxy (what httpx would read, via the stdlib)."""
    return bool(urllib.request.getproxies())


def default_client(timeouts: Timeouts) -> httpx.Client:
    """A pooled keep-alive client with ``timeouts``; TLS set up on first use unless proxied."""
    timeout = to_httpx_timeout(timeouts)
    if _proxies_configured():
        return httpx.Client(timeout=timeout)
    return httpx.Client(timeout=timeout, transport=_LazyTLSTransport())


def default_async_client(timeouts: Timeouts) -> httpx.AsyncClient:
    """The asyncio twin of :func:`default_client`."""
    timeout = to_httpx_timeout(timeouts)
    if _proxies_configured():
        return httpx.AsyncClient(timeout=timeout)
    return httpx.AsyncClient(timeout=timeout, transport=_LazyTLSAsyncTransport())
