"""The reference tus server fixture works, and what that server does (interop facts)."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import platformdirs
import pytest
from tusclient import client as tus_client

from tusd import TusServer, TusServerUnavailableError, check_node_setup, upload_id_of

if TYPE_CHECKING:
    from conftest import TusServerFactory

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A few MiB of reproducible random bytes, not a multiple of the chunk size."""
    path = tmp_path / "video.mp4"
    path.write_bytes(random.Random(1234).randbytes(5 * MiB + 12345))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def head(url: str) -> httpx.Response:
    return httpx.head(url, headers=TUS, timeout=10)


def test_tuspy_upload_is_stored_exactly_and_survives_a_restart(
    tus_server: TusServer, video: Path
) -> None:
    size = video.stat().st_size
    uploader = tus_client.TusClient(tus_server.endpoint).uploader(
        file_path=str(video), chunk_size=1 * MiB, metadata={"filename": "video.mp4"}
    )
    uploader.upload()
    url = uploader.url
    assert isinstance(url, str)

    assert url.startswith(tus_server.endpoint)  # absolute Location on 127.0.0.1
    assert tus_server.endpoint.startswith("http://127.0.0.1:")
    assert tus_server.sha256(url) == sha256(video)
    stored = tus_server.upload(url)
    assert stored.id == upload_id_of(url)
    assert stored.stored_bytes == stored.length == size
    assert stored.completed
    assert stored.metadata == {"filename": "video.mp4"}
    assert [u.id for u in tus_server.completed()] == [stored.id]

    port = tus_server.port
    tus_server.restart()
    assert tus_server.port == port

    response = head(url)
    assert response.status_code == 200
    assert int(response.headers["Upload-Offset"]) == size
    assert int(response.headers["Upload-Length"]) == size
    assert response.headers["Cache-Control"] == "no-store"


def test_partial_upload_resumes_after_the_server_is_killed(
    tus_server: TusServer, video: Path
) -> None:
    size = video.stat().st_size
    first = tus_client.TusClient(tus_server.endpoint).uploader(
        file_path=str(video), chunk_size=1 * MiB, metadata={"filename": "video.mp4"}
    )
    first.upload(stop_at=2 * MiB)
    url = first.url
    assert isinstance(url, str)
    assert tus_server.stored_bytes(url) == 2 * MiB
    assert tus_server.completed() == []

    tus_server.restart(hard=True)  # SIGKILL, then the same port and storage
    assert int(head(url).headers["Upload-Offset"]) == 2 * MiB

    # A second client resumes from the offset the server reports.
    second = tus_client.TusClient(tus_server.endpoint).uploader(
        file_path=str(video), url=url, chunk_size=1 * MiB
    )
    assert second.offset == 2 * MiB
    second.upload()
    assert tus_server.stored_bytes(url) == size
    assert tus_server.sha256(url) == sha256(video)
    assert len(tus_server.uploads()) == 1


def test_raw_protocol_answers(tus_server: TusServer) -> None:
    """What the reference server advertises and answers (facts the SDK relies on)."""
    with httpx.Client(timeout=10) as http:
        options = http.options(tus_server.endpoint)
        assert options.status_code == 204
        assert options.headers["Tus-Version"] == "1.0.0"
        extensions = set(options.headers["Tus-Extension"].split(","))
        # No checksum and no concatenation: 460 can't be produced by this server.
        assert extensions == {
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "termination",
            "expiration",
        }
        assert "Tus-Max-Size" not in options.headers

        created = http.post(tus_server.endpoint, headers={**TUS, "Upload-Length": "10"})
        assert created.status_code == 201
        assert "Upload-Expires" not in created.headers  # expiration off by default
        url = created.headers["Location"]
        assert url.startswith(tus_server.endpoint)

        patch_headers = {**TUS, "Content-Type": "application/offset+octet-stream"}
        wrong = http.patch(url, headers={**patch_headers, "Upload-Offset": "3"}, content=b"x")
        assert wrong.status_code == 409
        done = http.patch(url, headers={**patch_headers, "Upload-Offset": "0"}, content=b"0" * 10)
        assert done.status_code == 204
        assert done.headers["Upload-Offset"] == "10"
        too_much = http.patch(url, headers={**patch_headers, "Upload-Offset": "10"}, content=b"1")
        assert too_much.status_code == 413
        assert http.post(tus_server.endpoint, headers={"Upload-Length": "1"}).status_code == 412
        # An empty Upload-Metadata header is rejected (tuspy sends one when given no
        # metadata, so tuspy needs metadata to talk to this server).
        empty_metadata = {**TUS, "Upload-Length": "1", "Upload-Metadata": ""}
        assert http.post(tus_server.endpoint, headers=empty_metadata).status_code == 400

        # Termination of a finished upload is allowed by default; then 404.
        assert http.delete(url, headers=TUS).status_code == 204
        assert http.head(url, headers=TUS).status_code == 404
        assert tus_server.uploads() == []
        with pytest.raises(KeyError):
            tus_server.sha256(url)


def test_server_options(make_tus_server: TusServerFactory) -> None:
    limited = make_tus_server(max_size=1000, expiration_ms=3_600_000, relative_location=True)
    with httpx.Client(timeout=10) as http:
        assert http.options(limited.endpoint).headers["Tus-Max-Size"] == "1000"
        too_big = http.post(limited.endpoint, headers={**TUS, "Upload-Length": "1001"})
        assert too_big.status_code == 413
        created = http.post(limited.endpoint, headers={**TUS, "Upload-Length": "1000"})
        assert created.status_code == 201
        assert created.headers["Location"].startswith("/files/")
        assert "Upload-Expires" in created.headers


@pytest.mark.integration
def test_stop_is_clean_and_start_picks_a_free_port(tmp_path: Path) -> None:
    server = TusServer(tmp_path / "store")
    with server:
        assert server.running
        assert server.port != 0
        assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert not server.running
    assert server.stop() is None  # already stopped
    server.start()
    assert server.stop() == 0  # SIGTERM: exit code 0
    assert server.starts == 2


def test_missing_node_modules_fails_with_the_install_command(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"@tus/server": "2.4.5"}}')
    with pytest.raises(TusServerUnavailableError, match=r"npm ci --prefix tests"):
        check_node_setup(tmp_path)


def test_data_dirs_are_isolated(steadypost_home: Path, tmp_path: Path) -> None:
    assert os.environ["STEADYPOST_HOME"] == str(steadypost_home)
    assert not steadypost_home.exists()
    data_home = Path(os.environ["XDG_DATA_HOME"])
    assert data_home.is_dir()
    assert Path(platformdirs.user_data_dir("steadypost")).is_relative_to(data_home)
    assert Path(platformdirs.user_config_dir("steadypost")).is_relative_to(
        Path(os.environ["XDG_CONFIG_HOME"])
    )
    assert list(tmp_path.iterdir()) == []  # tests' own tmp_path stays empty
