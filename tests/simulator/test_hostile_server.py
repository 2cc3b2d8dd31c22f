"""``steadypost.testing.HostileServer`` does what each behaviour says, measured by its counters.

Every named behaviour is driven with plain httpx or a raw socket (never with steadypost's own
flows, so these tests do not depend on how steadypost reacts). The honest core also serves
tuspy, an independent tus client. The server itself must survive clients that hang up at any
point and must listen on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient

from steadypost.testing import HOSTILE_BEHAVIOURS, HostileServer
from steadypost.testing.hostile import Answer, Delay, Drip

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}
DATA = hashlib.sha256(b"hostile").digest() * 100  # 3,200 bytes


def create(client: httpx.Client, server: HostileServer, length: int = len(DATA)) -> str:
    resp = client.post(server.endpoint, headers={**TUS, "Upload-Length": str(length)})
    assert resp.status_code == 201
    return resp.headers["location"]


def patch(client: httpx.Client, url: str, offset: int, data: bytes) -> httpx.Response:
    return client.patch(url, headers={**OCTETS, "Upload-Offset": str(offset)}, content=data)


def raw(server: HostileServer, request: bytes, *, read_for_s: float) -> tuple[bytes, str]:
    """Send ``request`` on a fresh socket; what came back within ``read_for_s``, and how it
    ended: "eof", "reset" or "open" (still open at the end)."""
    got = bytearray()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        end = time.monotonic() + read_for_s
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return bytes(got), "open"
            except ConnectionResetError:
                return bytes(got), "reset"
            if not data:
                return bytes(got), "eof"
            got += data
    return bytes(got), "open"


def raw_patch(server: HostileServer, url: str, offset: int, data: bytes) -> bytes:
    path = httpx.URL(url).path
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def head(client: httpx.Client, url: str) -> httpx.Response:
    return client.head(url, headers=TUS)


# ------------------------------------------------------------------ the honest core


def test_the_honest_core_speaks_tus() -> None:
    with HostileServer("honest", max_size=10_000) as server, httpx.Client() as client:
        options = client.options(server.endpoint)
        assert options.status_code == 204
        assert options.headers["tus-version"] == "1.0.0"
        assert options.headers["tus-extension"] == "creation,creation-with-upload,termination"
        assert options.headers["tus-max-size"] == "10000"
        url = create(client, server)
        assert url.startswith(f"{server.url}/files/")
        assert head(client, url).headers["upload-offset"] == "0"
        first = patch(client, url, 0, DATA[:1000])
        assert (first.status_code, first.headers["upload-offset"]) == (204, "1000")
        conflict = patch(client, url, 0, DATA[:10])
        assert (conflict.status_code, conflict.headers["upload-offset"]) == (409, "1000")
        assert patch(client, url, 1000, DATA[1000:]).headers["upload-offset"] == str(len(DATA))
        status = head(client, url)
        assert status.headers["upload-length"] == str(len(DATA))
        assert status.headers["cache-control"] == "no-store"
        assert server.stored() == DATA
        assert patch(client, url, len(DATA), b"x").status_code == 400  # past Upload-Length
        wrong_type = client.patch(url, headers={**TUS, "Upload-Offset": "0"}, content=b"x")
        assert wrong_type.status_code == 415
        assert client.head(url).status_code == 412  # no Tus-Resumable
        bad_length = client.post(server.endpoint, headers={**TUS, "Upload-Length": "1e3"})
        assert bad_length.status_code == 400
        too_big = client.post(server.endpoint, headers={**TUS, "Upload-Length": "10001"})
        assert too_big.status_code == 413
        assert client.delete(url, headers=TUS).status_code == 204
        assert head(client, url).status_code == 404
        # 12 requests, each counted; every body byte received is counted too
        assert server.request_count == 14
        assert server.body_bytes == 1000 + 10 + (len(DATA) - 1000) + 1 + 1
        assert server.connections == 1  # keep-alive
        assert server.errors == []


def test_creation_with_upload_stores_the_post_body() -> None:
    with HostileServer() as server, httpx.Client() as client:
        resp = client.post(
            server.endpoint, headers={**OCTETS, "Upload-Length": str(len(DATA))}, content=DATA[:500]
        )
        assert (resp.status_code, resp.headers["upload-offset"]) == (201, "500")
        assert server.stored() == DATA[:500]


def test_tuspy_uploads_to_the_honest_core(tmp_path: Path) -> None:
    path = tmp_path / "clip.bin"
    path.write_bytes(DATA * 100)
    with HostileServer() as server:
        TusClient(server.endpoint).uploader(str(path), chunk_size=100_000).upload()
        assert server.stored() == DATA * 100
        assert server.count("PATCH") == 4
        assert server.body_bytes == len(DATA) * 100


def test_the_counters_count_by_method_and_time() -> None:
    with HostileServer() as server, httpx.Client() as client:
        client.options(server.endpoint)
        middle = time.monotonic()
        create(client, server)
        assert server.count() == 2
        assert server.count("POST") == 1
        assert server.count(since=middle) == 1
        assert server.count(until=middle) == 1
        assert [r.method for r in server.requests] == ["OPTIONS", "POST"]
        assert [r.status for r in server.requests] == [204, 201]


# ------------------------------------------------------------------ every named behaviour


def _patch_same_offset(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    for _ in range(3):
        resp = patch(client, url, 0, DATA)
        assert (resp.status_code, resp.headers["upload-offset"]) == (204, "0")
    assert server.stored() == b""
    assert server.body_bytes == 3 * len(DATA)


def _ack_one_byte(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    assert patch(client, url, 0, DATA).headers["upload-offset"] == "1"
    assert patch(client, url, 1, DATA[1:]).headers["upload-offset"] == "2"
    assert server.stored() == DATA[:2]


def _head_creeps(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    offsets = []
    for _ in range(3):
        offset = int(head(client, url).headers["upload-offset"])
        assert patch(client, url, offset, DATA[offset:]).status_code == 500
        offsets.append(offset)
    assert offsets == [0, 1, 2]
    assert head(client, url).headers["upload-offset"] == "3"


def _offset_unicode_digit(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    for resp in (patch(client, url, 0, DATA), head(client, url)):
        raw_headers = {name.lower(): value for name, value in resp.headers.raw}
        assert raw_headers[b"upload-offset"] == "²".encode()  # obs-text bytes on the wire
    assert server.stored() == DATA


def _offset_5000_digits(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    assert patch(client, url, 0, DATA).headers["upload-offset"] == "9" * 5000
    assert head(client, url).headers["upload-offset"] == "9" * 5000


def _retry_after_nines(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    resp = patch(client, url, 0, DATA)
    assert (resp.status_code, resp.headers["retry-after"]) == (503, "9" * 400)
    assert server.stored() == b""


def _drip(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    got, how = raw(server, raw_patch(server, url, 0, DATA), read_for_s=1.5)
    assert how == "open"
    assert 1 <= len(got) <= 3  # a byte a second; an honest answer is ~100 bytes at once
    assert got == b"HTTP"[: len(got)]
    assert server.stored() == DATA


def _silent(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    got, how = raw(server, raw_patch(server, url, 0, DATA), read_for_s=1.0)
    assert (got, how) == (b"", "open")
    assert server.requests[-1].method == "PATCH"
    assert server.requests[-1].status is None
    assert server.stored() == DATA


def _cut_mid_answer(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    got, how = raw(server, raw_patch(server, url, 0, DATA), read_for_s=3.0)
    assert (len(got), how) == (20, "eof")
    assert got.startswith(b"HTTP/1.1 204")
    assert server.stored() == DATA


def _reset(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    got, how = raw(server, raw_patch(server, url, 0, DATA), read_for_s=3.0)
    assert (got, how) == (b"", "reset")
    assert server.stored() == b""
    assert server.body_bytes == len(DATA)


def _garbage_status(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    got, how = raw(server, raw_patch(server, url, 0, DATA), read_for_s=3.0)
    assert got.startswith(b"HTTP/1.1 2O4 ")
    assert how == "eof"


def _oversized_headers(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    got, _ = raw(server, raw_patch(server, url, 0, DATA), read_for_s=1.0)
    assert got.index(b"\r\n\r\n") > 256 * 1024


def _html_not_tus(server: HostileServer, client: httpx.Client) -> None:
    options = client.options(server.endpoint)
    assert options.status_code == 501
    assert options.headers["content-type"].startswith("text/html")
    assert b"<html>" in options.content
    assert "tus-resumable" not in options.headers
    post = client.post(server.endpoint, headers={**TUS, "Upload-Length": "10"})
    assert post.status_code == 501
    assert client.get(server.url).status_code == 200


def _location_userinfo(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    assert url.startswith(f"http://user:pass@127.0.0.1:{server.port}/files/")
    assert server.authorizations == []
    head(client, url)  # httpx turns the userinfo into Basic auth: the server records it
    assert server.authorizations == ["Basic " + base64.b64encode(b"user:pass").decode()]


def _head_lies(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    assert patch(client, url, 0, DATA).status_code == 500
    assert head(client, url).headers["upload-offset"] == str(len(DATA))
    assert server.stored() == b""


def _no_offset(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    resp = patch(client, url, 0, DATA)
    assert resp.status_code == 204
    assert "upload-offset" not in resp.headers
    assert server.stored() == DATA


def _negative_offset(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    assert patch(client, url, 0, DATA).headers["upload-offset"] == "-1"
    assert server.stored() == DATA


def _head_backwards(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    assert patch(client, url, 0, DATA[:100]).status_code == 500
    seen = []
    for _ in range(3):
        offset = int(head(client, url).headers["upload-offset"])
        seen.append(offset)
        assert patch(client, url, offset, DATA[offset : offset + 10]).status_code == 500
    assert seen == [99, 98, 97]  # each HEAD one byte below the one before
    assert server.stored() == DATA[:107]  # what it keeps is still the file's prefix


def _max_size_garbage(server: HostileServer, client: httpx.Client) -> None:
    assert client.options(server.endpoint).headers["tus-max-size"] == "²"


def _honest(server: HostileServer, client: httpx.Client) -> None:
    url = create(client, server)
    assert patch(client, url, 0, DATA).headers["upload-offset"] == str(len(DATA))
    assert server.stored() == DATA


CHECKS: dict[str, Callable[[HostileServer, httpx.Client], None]] = {
    "honest": _honest,
    "patch-same-offset": _patch_same_offset,
    "ack-one-byte": _ack_one_byte,
    "head-creeps": _head_creeps,
    "offset-unicode-digit": _offset_unicode_digit,
    "offset-5000-digits": _offset_5000_digits,
    "retry-after-nines": _retry_after_nines,
    "drip": _drip,
    "silent": _silent,
    "cut-mid-answer": _cut_mid_answer,
    "reset": _reset,
    "garbage-status": _garbage_status,
    "oversized-headers": _oversized_headers,
    "html-not-tus": _html_not_tus,
    "location-userinfo": _location_userinfo,
    "head-lies": _head_lies,
    "no-offset": _no_offset,
    "negative-offset": _negative_offset,
    "head-backwards": _head_backwards,
    "max-size-garbage": _max_size_garbage,
}


def test_every_behaviour_has_its_check() -> None:
    assert set(CHECKS) == set(HOSTILE_BEHAVIOURS)


@pytest.mark.parametrize("name", list(CHECKS))
def test_each_behaviour_does_what_it_says(name: str) -> None:
    with HostileServer(name) as server, httpx.Client(timeout=5) as client:
        CHECKS[name](server, client)
        assert server.errors == []


def test_an_unknown_behaviour_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown behaviour 'nice'"):
        HostileServer("nice")


# ------------------------------------------------------------------ the wire, for any answer


def test_a_delay_comes_before_the_whole_answer() -> None:
    app = lambda seen, body: Answer(200, body=b"late")  # noqa: E731
    with HostileServer(app=app, wire=Delay(seconds=1.0)) as server:
        got, _ = raw(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", read_for_s=0.4)
        assert got == b""
        with httpx.Client() as client:
            assert client.get(server.url).content == b"late"


def test_a_drip_after_the_head_drips_only_the_body() -> None:
    answer = Answer(200, body=b"b" * 100)
    head_length = len(answer.encode(head_only=True))
    with HostileServer(app=lambda s, b: answer, wire=Drip(1, 0.5, after=head_length)) as server:
        got, _ = raw(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", read_for_s=1.2)
    assert got.startswith(answer.encode(head_only=True))
    assert len(got) - head_length <= 3


def test_wire_times_twists_only_the_first_answers() -> None:
    app = lambda seen, body: Answer(200, body=b"ok")  # noqa: E731
    with HostileServer(app=app, wire=Drip(1, 5.0), wire_times=1) as server:
        raw(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", read_for_s=0.2)
        with httpx.Client() as client:
            assert client.get(server.url).content == b"ok"


# ------------------------------------------------------------------ robustness


def test_clients_hanging_up_anywhere_never_break_the_server() -> None:
    with HostileServer("drip") as server, httpx.Client() as client:
        url = create(client, server)
        path = httpx.URL(url).path.encode()
        for request in (
            b"PATC",  # mid request line
            b"PATCH " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Le",  # mid headers
            raw_patch(server, url, 0, DATA)[:-100],  # mid body
            raw_patch(server, url, 0, DATA),  # while the answer drips
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,  # a TLS hello
            b"GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"NONSENSE\r\n\r\n",
            b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20_000 + b"\r\n",  # a 140 KiB head
        ):
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(request)
                sock.settimeout(0.3)
                with contextlib.suppress(TimeoutError, ConnectionResetError):
                    sock.recv(100)
        # still serving, and nothing went wrong inside
        assert head(client, url).status_code == 200
        assert server.errors == []


def test_it_listens_on_loopback_only_and_stops_promptly() -> None:
    server = HostileServer("silent").start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client() as client:
            url = create(client, server)
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(raw_patch(server, url, 0, DATA))  # a connection held silently
            time.sleep(0.2)
            start = time.monotonic()
            server.stop()
            assert time.monotonic() - start < 3.0
            sock.settimeout(3.0)
            assert sock.recv(10) == b""  # the held connection was closed
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
