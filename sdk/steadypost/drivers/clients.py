"""The httpx clients an uploader makes for itself when the caller passes none.

They behave like ``httpx.Client()`` / ``httpx.AsyncClient()`` with the
uploader's timeouts, with three differences:

* **The exchange deadline is enforced on the socket.** Their httpcore pools
  use a network backend whose streams give every connect, TLS handshake, read
  and write at most the time left before the deadline of the request being
  sent (:func:`steadypost.drivers.http.current_deadline`, a context variable, so
  it follows threads and asyncio tasks), and raise the timeout httpcore would
  raise. A server that drips its status line or headers, or reads the body at
  a trickle, is cut at the deadline. httpx's ``HTTPTransport`` builds its
  httpcore pool internally and takes no network backend (httpx 0.28; see
  encode/httpx#3749), so :mod:`steadypost.drivers.socket_deadline` (loaded with the
  first client) swaps that pool for an ``httpcore.ConnectionPool`` with the
  backend and httpx's default limits. The transports stay ``HTTPTransport``
  objects: httpx's own request mapping and exception translation run as
  usual, and tools that mock httpx at that class (pytest-httpx) still work.
* **TLS is set up on first use.** The verified TLS context (loading certifi's
  CA bundle, about 30 ms of CPU) is built on the first ``https://`` request
  instead of up front. An uploader talking to a plain-HTTP tus server (a NAS,
  a studio's ingest box, the test server) never pays for it. TLS itself is
  unchanged: ``httpx.create_ssl_context()``, certificates verified,
  ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured.

* **Request bodies take no copy through Python.** Their sockets send each
  block of a file body themselves: ``os.sendfile`` on plain HTTP (sync and
  asyncio), one reused buffer under TLS (sync); see
  :mod:`steadypost.drivers.blocks`.

httpx ignores proxy environment variables (``HTTPS_PROXY``, ``ALL_PROXY``,
...) once a client is given its own transport, so when any is set the
uploader makes a plain ``httpx.Client`` instead, and the proxies apply; the
deadline is then enforced as for a client you pass in (see
:mod:`steadypost.drivers.http`).
"""

from __future__ import annotations

import urllib.request

import httpx

from steadypost.drivers.http import to_httpx_timeout
from steadypost.models import Timeouts


def _proxies_configured() -> bool:
    """Whether the environment names a proxy (what httpx would read, via the stdlib)."""
    return bool(urllib.request.getproxies())


def default_client(timeouts: Timeouts) -> httpx.Client:
    """A pooled keep-alive client with ``timeouts`` and the exchange deadline on the socket."""
    timeout = to_httpx_timeout(timeouts)
    if _proxies_configured():
        return httpx.Client(timeout=timeout)
    from steadypost.drivers.socket_deadline import LazyTLSTransport

    return httpx.Client(timeout=timeout, transport=LazyTLSTransport())


def default_async_client(timeouts: Timeouts) -> httpx.AsyncClient:
    """The asyncio twin of :func:`default_client`."""
    timeout = to_httpx_timeout(timeouts)
    if _proxies_configured():
        return httpx.AsyncClient(timeout=timeout)
    from steadypost.drivers.socket_deadline import AsyncLazyTLSTransport

    return httpx.AsyncClient(timeout=timeout, transport=AsyncLazyTLSTransport())
