"""The uploader's own httpx clients: TLS built only for https, always verified, never retried.

A real TLS server on 127.0.0.1 with a certificate from a throwaway CA (``trustme``): an
uploader that does not trust that CA refuses it at once, without a retry or a byte sent;
one told to trust it (``SSL_CERT_FILE``) talks to it. A plain-HTTP upload to the reference
tus server never builds the verified TLS context. A proxy named in the environment is used.
"""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from steadypost import AsyncUploader, CertificateError, Outcome, Uploader
from tusd import TusServer

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests talk to 127.0.0.1 directly, whatever proxy the machine running them has."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@dataclass
class TLSServer:
    url: str
    ca: trustme.CA
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def tls_server() -> Iterator[TLSServer]:
    """An HTTPS server on 127.0.0.1 answering every request with 200 "ok"."""
    ca = trustme.CA()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_OPTIONS = do_POST = _answer  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield TLSServer(f"https://127.0.0.1:{httpd.server_address[1]}", ca, seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"v" * 1000)
    return clip


def _tls_pool(up: Uploader) -> object:
    return getattr(up.client._transport, "_tls")  # noqa: B009 (private on purpose)


def test_plain_http_upload_never_builds_the_tls_context(
    tus_server: TusServer, video: Path
) -> None:
    with Uploader() as up:
        result = up.upload(video, tus_server.endpoint)
        assert _tls_pool(up) is None
    assert tus_server.upload(result.upload_url).stored_bytes == 1000


def test_an_unverifiable_certificate_fails_at_once_without_retrying(
    tls_server: TLSServer, video: Path
) -> None:
    waits: list[float] = []
    with Uploader(sleep=waits.append) as up:
        with pytest.raises(CertificateError, match="certificate could not be verified") as info:
            up.upload(video, tls_server.url + "/files")
        assert _tls_pool(up) is not None
    assert info.value.outcome is Outcome.NOT_DELIVERED
    assert isinstance(info.value.__cause__, Exception)  # the httpx error is kept
    assert waits == []  # not a transient failure: no backoff, no second attempt
    assert tls_server.requests == []  # the handshake failed: nothing was sent


def test_an_unverifiable_certificate_fails_the_same_way_async(
    tls_server: TLSServer, video: Path
) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        async with AsyncUploader(sleep=record) as up:
            await up.upload(video, tls_server.url + "/files")

    with pytest.raises(CertificateError):
        asyncio.run(main())
    assert waits == []
    assert tls_server.requests == []


def test_a_trusted_private_ca_is_honoured_on_first_use(
    tls_server: TLSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_server.ca.cert_pem.write_to_path(str(ca_file))
    with Uploader() as up:
        # Set after the uploader exists: the verified context is built on the first https
        # request, so it still reads SSL_CERT_FILE then (as httpx.Client() would have).
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        answer = up.client.get(tls_server.url + "/hello")
    assert (answer.status_code, answer.text) == (200, "ok")
    assert tls_server.requests == ["GET /hello"]


def test_a_proxy_from_the_environment_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx drops environment proxies for a client given its own transport: not ours."""
    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)  # a forward proxy gets the absolute URL
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"proxied")

        def log_message(self, format: str, *args: object) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        with Uploader() as up:
            answer = up.client.get("http://tus.example/files/abc")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert answer.text == "proxied"
    assert seen == ["http://tus.example/files/abc"]
