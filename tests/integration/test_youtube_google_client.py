"""google-api-python-client against the YouTube simulator on 127.0.0.1 (plain HTTP).

The client is pointed at the simulator with ``build_from_document`` and the
discovery document's ``rootUrl`` rewritten (uploads derive from it too), as
PLATFORMS.md describes. It completes a resumable upload with
``MediaFileUpload(resumable=True)`` + ``next_chunk()``; and an upload it began
is finished by steadypost from its session URI, without a second video.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

googleapiclient = pytest.importorskip("googleapiclient")
from google.oauth2.credentials import Credentials  # noqa: E402
from googleapiclient.discovery import build_from_document  # noqa: E402
from googleapiclient.errors import HttpError  # noqa: E402
from googleapiclient.http import MediaFileUpload  # noqa: E402

from steadypost import Journal, PostState, RetryPolicy, Uploader  # noqa: E402
from steadypost.platforms.youtube import YouTubePlatform  # noqa: E402
from steadypost.testing import (  # noqa: E402
    FakeClock,
    PlatformSimulator,
    ProcessedButError,
    SimulatorServer,
)

GRANULE = 256 * 1024
TOKEN = "ya29.google-client-test"


def discovery(root: str) -> dict[str, Any]:
    path = Path(googleapiclient.__file__).parent / "discovery_cache/documents/youtube.v3.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    doc["rootUrl"] = root.rstrip("/") + "/"
    return doc




@pytest.fixture
def sim(clock: FakeClock) -> PlatformSimulator:
    return PlatformSimulator(clock=clock)


@pytest.fixture
def server(sim: PlatformSimulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim) as running:
        yield running


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(random.Random(21).randbytes(3 * GRANULE + 777))
    return path


def insert(server: SimulatorServer, video: Path) -> Any:
    youtube = build_from_document(discovery(server.url), credentials=Credentials(token=TOKEN))
    media = MediaFileUpload(str(video), mimetype="video/mp4", chunksize=GRANULE, resumable=True)
    body = {"snippet": {"title": "from google-api-python-client"},
            "status": {"privacyStatus": "private"}}  # fmt: skip
    return youtube.videos().insert(part="snippet,status", body=body, media_body=media)


def test_google_api_python_client_completes_an_upload(
    sim: PlatformSimulator, server: SimulatorServer, video: Path
) -> None:
    # The last chunk is stored but answered 503. Google's own sample retries by calling
    # next_chunk() again after an HttpError: the client then asks for the offset itself.
    sim.faults.add(ProcessedButError(status=503, on={"final_patch"}))
    request = insert(server, video)
    response = None
    steps, errors, statuses = 0, 0, []
    while response is None:
        try:
            _status, response = request.next_chunk()
        except HttpError as exc:
            errors += 1
            statuses.append(exc.resp.status)
        steps += 1
    assert (errors, statuses) == (1, [503])
    [made] = sim.youtube.videos()
    assert response["id"] == made.video_id
    assert made.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
    assert made.title == "from google-api-python-client"
    probes = [r for r in sim.requests if r.headers.get("content-range", "").startswith("bytes */")]
    assert probes  # after the 503 the client asked for the offset itself
    assert steps >= 4


def test_steadypost_finishes_an_upload_google_api_python_client_began(
    sim: PlatformSimulator, server: SimulatorServer, video: Path, tmp_path: Path,
    clock: FakeClock,
) -> None:  # fmt: skip
    request = insert(server, video)
    status, response = request.next_chunk()
    assert response is None
    assert status.resumable_progress == GRANULE
    session = request.resumable_uri  # all the client kept, in memory
    with Journal(tmp_path / "j.sqlite3", clock=clock.now) as journal, Uploader(
        journal=journal, clock=clock.now, sleep=clock.sleep,
        headers={"Authorization": f"Bearer {TOKEN}"},
        retry=RetryPolicy(max_attempts=5, deadline_s=None),
    ) as up:  # fmt: skip
        post = up.post(video, server.url, platform=YouTubePlatform(
            session_uri=session, chunk_size=GRANULE))  # fmt: skip
    assert post.state is PostState.CONFIRMED, post.last_error
    assert sim.youtube.sessions() == 1
    [made] = sim.youtube.videos()
    assert made.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
    assert post.extra["youtube"]["video_id"] == made.video_id
    sent = [r.headers.get("content-range") for r in sim.requests if r.method == "PUT"]
    size = video.stat().st_size
    assert sent[1] == f"bytes */{size}"  # steadypost asked first, then went on from there
    assert sent[2] == f"bytes {GRANULE}-{2 * GRANULE - 1}/{size}"
