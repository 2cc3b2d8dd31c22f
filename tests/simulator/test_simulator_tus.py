"""The simulator's tus 1.0.0 server, driven by plain httpx in process and over a real socket."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from steadypost.testing import FakeClock, PlatformSimulator, SimulatorServer, http_date

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


@dataclass
class Platform:
    sim: PlatformSimulator
    clock: FakeClock
    client: httpx.Client
    base: str

    def create(self, length: int, **headers: str) -> str:
        response = self.client.post(
            "/files", headers={**TUS, "Upload-Length": str(length), **headers}
        )
        assert response.status_code == 201, response.text
        return response.headers["location"]

    def patch(self, url: str, offset: int, data: bytes | Iterator[bytes], **headers: str
              ) -> httpx.Response:
        return self.client.patch(
            url, content=data, headers={**TUS, **OCTET, "Upload-Offset": str(offset), **headers}
        )

    def head(self, url: str) -> httpx.Response:
        return self.client.head(url, headers=TUS)


@pytest.fixture(params=["inprocess", "server"])
def make_platform(request: pytest.FixtureRequest) -> Iterator[Callable[..., Platform]]:
    """``make_platform(**simulator_options)``, once in process and once on 127.0.0.1."""
    with ExitStack() as stack:

        def make(**options: Any) -> Platform:
            clock = FakeClock()
            sim = PlatformSimulator(clock=clock, **options)
            if request.param == "inprocess":
                base = "https://platform.test"
                client = httpx.Client(transport=sim.transport(), base_url=base)
            else:
                base = stack.enter_context(SimulatorServer(sim)).url
                client = httpx.Client(base_url=base, timeout=2.0)
            stack.enter_context(client)
            return Platform(sim, clock, client, base)

        yield make


@pytest.fixture
def platform(make_platform: Callable[..., Platform]) -> Platform:
    return make_platform()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _checksum(algorithm: str, data: bytes) -> str:
    digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm} {base64.b64encode(digest).decode()}"


# --- OPTIONS ---------------------------------------------------------------------------


def test_options_advertises_version_extensions_and_limits(platform: Platform) -> None:
    response = platform.client.options("/files")  # no Tus-Resumable needed for OPTIONS

    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-extension"].split(",") == [
        "creation", "creation-with-upload", "termination", "checksum", "expiration"]
    assert response.headers["tus-checksum-algorithm"] == "sha1,md5,sha256"
    assert int(response.headers["tus-max-size"]) > 0


def test_options_are_configurable(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(
        extensions=("creation", "checksum"), checksum_algorithms=("sha256",), max_size=None
    )
    response = platform.client.options("/files")

    assert response.headers["tus-extension"] == "creation,checksum"
    assert response.headers["tus-checksum-algorithm"] == "sha256"
    assert "tus-max-size" not in response.headers


# --- a whole upload ---------------------------------------------------------------------


def test_complete_upload_in_chunks(platform: Platform) -> None:
    data = os.urandom(100_000)
    url = platform.create(len(data), **{"Upload-Metadata": f"filename {_b64('clip.mp4')},is_draft"})
    assert url.startswith(platform.base + "/files/")

    offset = 0
    for start in range(0, len(data), 30_000):
        response = platform.patch(url, offset, data[start : start + 30_000])
        assert response.status_code == 204
        offset = int(response.headers["upload-offset"])
        assert response.headers["tus-resumable"] == "1.0.0"

    head = platform.head(url)
    assert head.status_code == 200
    assert head.headers["upload-offset"] == head.headers["upload-length"] == str(len(data))
    assert head.headers["cache-control"] == "no-store"
    assert "upload-expires" not in head.headers  # finished uploads do not expire
    (info,) = platform.sim.uploads.values()
    assert info.completed
    assert info.offset == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert dict(info.metadata) == {"filename": "clip.mp4", "is_draft": ""}
    assert platform.sim.upload_bytes(info.upload_id) == data


def test_creation_with_upload(platform: Platform) -> None:
    data = b"0123456789" * 10
    response = platform.client.post(
        "/files", content=data[:40], headers={**TUS, **OCTET, "Upload-Length": str(len(data))}
    )
    assert response.status_code == 201
    assert response.headers["upload-offset"] == "40"
    url = response.headers["location"]

    assert platform.patch(url, 40, data[40:]).headers["upload-offset"] == "100"
    assert platform.sim.upload_bytes(url.rsplit("/", 1)[1]) == data


def test_creation_with_upload_turned_off_ignores_the_body(
    make_platform: Callable[..., Platform],
) -> None:
    platform = make_platform(extensions=("creation",))
    response = platform.client.post(
        "/files", content=b"abc", headers={**TUS, **OCTET, "Upload-Length": "3"}
    )
    assert response.status_code == 201
    assert "upload-offset" not in response.headers
    assert platform.head(response.headers["location"]).headers["upload-offset"] == "0"


def test_upload_stored_on_disk(make_platform: Callable[..., Platform], tmp_path: Path) -> None:
    platform = make_platform(storage_dir=tmp_path)
    url = platform.create(9)
    platform.patch(url, 0, b"abc")
    platform.patch(url, 3, b"def")
    bad = platform.patch(url, 6, b"ghi", **{"Upload-Checksum": _checksum("sha1", b"xyz")})
    assert bad.status_code == 460
    upload_id = url.rsplit("/", 1)[1]
    assert (tmp_path / f"{upload_id}.bin").read_bytes() == b"abcdef"  # the chunk was cut off
    platform.patch(url, 6, b"ghi")
    assert platform.sim.uploads[upload_id].sha256 == hashlib.sha256(b"abcdefghi").hexdigest()
    platform.client.delete(url, headers=TUS)
    assert not (tmp_path / f"{upload_id}.bin").exists()


# --- checksums ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_checksum_accepted(platform: Platform, algorithm: str) -> None:
    url = platform.create(5)
    checksum = _checksum(algorithm, b"hello")
    response = platform.patch(url, 0, b"hello", **{"Upload-Checksum": checksum})
    assert response.status_code == 204
    assert response.headers["upload-offset"] == "5"


def test_checksum_mismatch_is_460_and_the_chunk_is_discarded(platform: Platform) -> None:
    url = platform.create(10)
    platform.patch(url, 0, b"12345")
    response = platform.patch(url, 5, b"67890", **{"Upload-Checksum": _checksum("sha1", b"other")})

    assert response.status_code == 460
    assert response.reason_phrase == "Checksum Mismatch"
    assert platform.head(url).headers["upload-offset"] == "5"
    assert platform.sim.upload_bytes(url.rsplit("/", 1)[1]) == b"12345"
    assert platform.patch(url, 5, b"67890", **{"Upload-Checksum": _checksum("md5", b"67890")}
                          ).status_code == 204


@pytest.mark.parametrize("header", ["crc32 AAAA", "sha1 not-base64!", "sha1"])
def test_bad_checksum_header_is_400(platform: Platform, header: str) -> None:
    url = platform.create(3)
    assert platform.patch(url, 0, b"abc", **{"Upload-Checksum": header}).status_code == 400


def test_checksum_extension_off_rejects_checksums(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(extensions=("creation",))
    url = platform.create(3)
    response = platform.patch(url, 0, b"abc", **{"Upload-Checksum": _checksum("sha1", b"abc")})
    assert response.status_code == 400


# --- protocol errors --------------------------------------------------------------------------


def test_wrong_offset_is_409(platform: Platform) -> None:
    url = platform.create(10)
    platform.patch(url, 0, b"abc")
    response = platform.patch(url, 0, b"abc")
    assert response.status_code == 409
    assert platform.head(url).headers["upload-offset"] == "3"


def test_wrong_content_type_is_415(platform: Platform) -> None:
    url = platform.create(3)
    response = platform.patch(url, 0, b"abc", **{"Content-Type": "application/json"})
    assert response.status_code == 415


@pytest.mark.parametrize("version", [None, "0.2.2"])
def test_missing_or_wrong_tus_resumable_is_412(platform: Platform, version: str | None) -> None:
    url = platform.create(3)
    headers = {"Tus-Resumable": version} if version else {}
    response = platform.client.head(url, headers=headers)
    assert response.status_code == 412
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"


def test_unknown_upload_is_404(platform: Platform) -> None:
    assert platform.head("/files/nope").status_code == 404


def test_creation_needs_a_length_within_max_size(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(max_size=1000)
    assert platform.client.post("/files", headers=TUS).status_code == 400
    assert platform.client.post("/files", headers={**TUS, "Upload-Length": "1001"}
                                ).status_code == 413
    bad_metadata = {**TUS, "Upload-Length": "9", "Upload-Metadata": "bad key!x"}
    assert platform.client.post("/files", headers=bad_metadata).status_code == 400


def test_body_beyond_the_length_is_refused(platform: Platform) -> None:
    url = platform.create(4)
    response = platform.patch(url, 0, b"too long")
    assert response.status_code == 413
    assert platform.head(url).headers["upload-offset"] == "0"


def test_streamed_body_beyond_the_length_is_400(platform: Platform) -> None:
    url = platform.create(4)

    def blocks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b"abc"
        yield b"def"

    response = platform.patch(url, 0, blocks())
    assert response.status_code == 400
    assert platform.sim.upload_bytes(url.rsplit("/", 1)[1]) == b"abcd"  # up to the length


def test_x_http_method_override(platform: Platform) -> None:
    url = platform.create(3)
    response = platform.client.post(
        url, content=b"abc",
        headers={**TUS, **OCTET, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
    )
    assert response.status_code == 204
    assert platform.sim.requests[-1].method == "PATCH"


# --- expiration and termination -------------------------------------------------------------


def test_expiration_after_inactivity_is_410(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(expire_after_s=3600)
    url = platform.create(10)
    expires = platform.clock.now() + 3600
    assert platform.head(url).headers["upload-expires"] == http_date(expires)

    platform.clock.advance(1800)
    response = platform.patch(url, 0, b"abc")  # activity pushes the expiry back
    assert response.headers["upload-expires"] == http_date(platform.clock.now() + 3600)

    platform.clock.advance(3599)
    assert platform.head(url).status_code == 200
    platform.clock.advance(1)
    assert platform.head(url).status_code == 410
    assert platform.patch(url, 3, b"def").status_code == 410
    (info,) = platform.sim.uploads.values()
    assert info.gone == "expired"


def test_expiration_off_never_expires(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(extensions=("creation",))
    url = platform.create(10)
    platform.clock.advance(365 * 86400)
    head = platform.head(url)
    assert head.status_code == 200
    assert "upload-expires" not in head.headers


def test_termination(platform: Platform) -> None:
    url = platform.create(10)
    platform.patch(url, 0, b"abc")
    assert platform.client.delete(url, headers=TUS).status_code == 204
    assert platform.head(url).status_code == 404
    assert platform.client.delete(url, headers=TUS).status_code == 404
    assert next(iter(platform.sim.uploads.values())).gone == "terminated"


def test_termination_off_is_405(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(extensions=("creation",))
    assert platform.client.delete(platform.create(1), headers=TUS).status_code == 405


# --- Location styles -------------------------------------------------------------------------


def test_relative_location(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(location="relative")
    url = platform.create(3)
    assert url.startswith("/files/")
    assert platform.patch(url, 0, b"abc").status_code == 204


def test_location_on_another_origin(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(location="other-origin", other_origin="https://upload.cdn.test")
    assert platform.create(3).startswith("https://upload.cdn.test/files/")


def test_location_on_the_other_loopback_name_by_default() -> None:
    sim = PlatformSimulator(location="other-origin")
    with SimulatorServer(sim) as server, httpx.Client(base_url=server.url) as client:
        response = client.post("/files", headers={**TUS, "Upload-Length": "1"})
        assert response.headers["location"].startswith(f"http://localhost:{server.port}/files/")
