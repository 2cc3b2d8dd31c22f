"""The naive clients of ``benchmarks/duplicates.py``: what a person or a simple script does.

Plain httpx, nothing of steadypost's retry or journal machinery. Each speaks its
platform's protocol the simplest correct way (the platform's documented calls, in order)
and, on any error (an answer that is not the documented success, a reset, a timeout),
posts the whole video again at once: a new upload and a new publish, up to ``attempts``
times, with no wait, no journal and no check of what the failed try did. That is what
re-running a script (or pressing "post" again) does, and what the clients of issue 16 do:
google-api-python-client with its default ``num_retries=0``, tweepy's media id kept only
in memory, instagrapi retrying its configure call, PyVimeo starting a new video.

Waits the protocol itself asks for are kept, on the benchmark's fake clock: Instagram's
container is polled once a minute until it is ready, X's media every
``check_after_secs``. Where the platform's own Python client retries inside an upload, so
does its naive client: PyVimeo's tuspy retries a failed PATCH (see ``NaiveVimeo``);
google-api-python-client (``num_retries=0``) and tweepy (``retry_count=0``) do not.

``NaivePostApi`` (the post-api convention) is the one exception, kept as it always was
for comparable figures: a common tus client (after an error, HEAD for the offset, then go
on) plus one ``POST /posts`` with no idempotency key, each step retried at once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx

from steadypost.testing import FakeClock

TUS = {"Tus-Resumable": "1.0.0"}
#: The longest a naive client polls a video that is processing before it gives up (fake time).
POLL_LIMIT_S = 24 * 3600.0


class StepFailedError(Exception):
    """A step did not answer its documented success."""


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    """The response, if its status is one of ``statuses`` (default: any 2xx)."""
    good = response.status_code in statuses if statuses else 200 <= response.status_code < 300
    if not good:
        request = response.request
        raise StepFailedError(f"{request.method} {request.url} -> {response.status_code}")
    return response


class NaiveClient:
    """Posts one video; ``post`` says whether it believes the video was posted."""

    def __init__(self, client: httpx.Client, *, endpoint: str, attempts: int, clock: FakeClock,
                 chunk_size: int) -> None:  # fmt: skip
        self.client = client
        self.endpoint = endpoint.rstrip("/")
        self.attempts = attempts
        self.clock = clock
        self.chunk_size = chunk_size

    def post(self, path: Path, data: bytes, caption: str, *, token: str) -> bool:
        """The whole post, tried again at once after any error, up to ``attempts`` times."""
        for _ in range(self.attempts):
            try:
                self.once(path, data, caption, {"Authorization": f"Bearer {token}"})
            except (httpx.TransportError, StepFailedError, KeyError, ValueError):
                continue
            return True
        return False

    def once(self, path: Path, data: bytes, caption: str, auth: dict[str, str]) -> None:
        raise NotImplementedError

    def pause(self, seconds: float, waited: float) -> float:
        """Wait ``seconds`` on the fake clock while a video processes; the total waited."""
        if waited >= POLL_LIMIT_S:
            raise StepFailedError("still processing after a day")
        self.clock.sleep(seconds)
        return waited + seconds


class NaiveTikTok(NaiveClient):
    """``video/init`` (Direct Post, FILE_UPLOAD), then the chunk PUTs; TikTok publishes."""

    def once(self, path: Path, data: bytes, caption: str, auth: dict[str, str]) -> None:
        size = len(data)
        chunk = size if size <= 64_000_000 else 10_000_000  # whole up to 64 MB, as documented
        count = size // chunk
        init = ok(self.client.post(f"{self.endpoint}/v2/post/publish/video/init/", headers=auth,
                                   json={"post_info": {"title": caption,
                                                       "privacy_level": "SELF_ONLY"},
                                         "source_info": {"source": "FILE_UPLOAD",
                                                         "video_size": size, "chunk_size": chunk,
                                                         "total_chunk_count": count}}))  # fmt: skip
        url = init.json()["data"]["upload_url"]
        for index in range(count):
            first = index * chunk
            last = size - 1 if index == count - 1 else first + chunk - 1
            ok(self.client.put(url, content=data[first:last + 1], headers={
                "Content-Type": "video/mp4", "Content-Range": f"bytes {first}-{last}/{size}"}))


class NaiveVimeo(NaiveClient):
    """PyVimeo 1.1: ``POST /me/videos`` (tus approach), then tuspy 1.1 PATCHes the link.

    As PyVimeo sets it up: 200 MB chunks, ``retries=3``; tuspy's own retry of a failed
    PATCH waits ``retry_delay`` (30 s), asks the offset with HEAD (an answer without
    ``Upload-Offset`` uses up a retry; a broken connection ends the upload) and PATCHes
    from there. Whatever fails after that fails the upload: the whole post again.
    """

    CHUNK = 200 * 1024 * 1024
    RETRIES, RETRY_DELAY_S = 3, 30.0

    def once(self, path: Path, data: bytes, caption: str, auth: dict[str, str]) -> None:
        made = ok(self.client.post(f"{self.endpoint}/me/videos", headers=auth, json={
            "upload": {"approach": "tus", "size": len(data)}, "name": caption}))
        link = made.json()["upload"]["upload_link"]
        offset = 0
        while offset < len(data):
            offset = self._chunk(link, data, offset)

    def _chunk(self, link: str, data: bytes, offset: int) -> int:
        retried = 0
        while True:
            try:
                answer = self.client.patch(link, content=data[offset:offset + self.CHUNK],
                                           headers={**TUS, "Upload-Offset": str(offset),
                                                    "Content-Type":
                                                    "application/offset+octet-stream"})  # fmt: skip
                if 200 <= answer.status_code < 300:
                    return int(answer.headers["upload-offset"])
            except httpx.TransportError:
                pass
            while True:  # tuspy's _retry_or_cry
                if retried >= self.RETRIES:
                    raise StepFailedError(f"PATCH {link} failed {retried + 1} times")
                self.clock.sleep(self.RETRY_DELAY_S)
                retried += 1
                head = self.client.head(link, headers=TUS)
                if "upload-offset" in head.headers:
                    offset = int(head.headers["upload-offset"])
                    break


class NaiveYouTube(NaiveClient):
    """The resumable initiation, then the file in one ``PUT`` (the Google client's 100 MiB)."""

    def once(self, path: Path, data: bytes, caption: str, auth: dict[str, str]) -> None:
        started = ok(self.client.post(
            f"{self.endpoint}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
            headers={**auth, "X-Upload-Content-Length": str(len(data)),
                     "X-Upload-Content-Type": "video/mp4"},
            json={"snippet": {"title": caption}, "status": {"privacyStatus": "private"}}),
            200)  # fmt: skip
        session = started.headers["location"]
        ok(self.client.put(session, content=data, headers={
            **auth, "Content-Type": "video/mp4",
            "Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}), 200, 201)  # fmt: skip


class NaiveInstagram(NaiveClient):
    """A REELS container, the bytes to rupload, ``status_code`` until FINISHED, media_publish."""

    IG_USER = "17841400000000001"
    RUPLOAD = "https://rupload.facebook.com"

    def once(self, path: Path, data: bytes, caption: str, auth: dict[str, str]) -> None:
        graph = f"{self.endpoint}/{self.IG_USER}"
        made = ok(self.client.post(f"{graph}/media", headers=auth, params={
            "media_type": "REELS", "upload_type": "resumable", "caption": caption}))
        container = made.json()["id"]
        token = auth["Authorization"].partition(" ")[2]
        ok(self.client.post(f"{self.RUPLOAD}/ig-api-upload/{container}", content=data, headers={
            "Authorization": f"OAuth {token}", "offset": "0", "file_size": str(len(data))}))

        waited = 0.0
        while (status := self._status(container, auth)) == "IN_PROGRESS":
            waited = self.pause(60.0, waited)  # once a minute (Threads' advice)
        if status != "FINISHED":
            raise StepFailedError(f"the container is {status}")
        ok(self.client.post(f"{graph}/media_publish", headers=auth,
                            params={"creation_id": container}))

    def _status(self, container: str, auth: dict[str, str]) -> str:
        answer = ok(self.client.get(f"{self.endpoint}/{container}", headers=auth,
                                    params={"fields": "status_code"}))
        return str(answer.json()["status_code"])


class NaiveX(NaiveClient):
    """INIT, APPEND segments (tweepy's 1 MiB), FINALIZE, STATUS until ready, ``POST /2/tweets``."""

    SEGMENT = 1024 * 1024

    def once(self, path: Path, data: bytes, caption: str, auth: dict[str, str]) -> None:
        media = f"{self.endpoint}/2/media/upload"
        init = ok(self.client.post(media, headers=auth, data={
            "command": "INIT", "media_type": "video/mp4", "total_bytes": str(len(data)),
            "media_category": "tweet_video"}))
        media_id = init.json()["data"]["id"]
        for index, first in enumerate(range(0, len(data), self.SEGMENT)):
            ok(self.client.post(media, headers=auth, data={
                "command": "APPEND", "media_id": media_id, "segment_index": str(index)},
                files={"media": ("blob", data[first:first + self.SEGMENT])}))  # fmt: skip
        done = ok(self.client.post(media, headers=auth, data={
            "command": "FINALIZE", "media_id": media_id}))
        info: dict[str, Any] = done.json()["data"].get("processing_info") or {}
        waited = 0.0
        while info.get("state") not in (None, "succeeded"):
            if info["state"] == "failed":
                raise StepFailedError("X could not process the video")
            waited = self.pause(float(info.get("check_after_secs") or 5), waited)
            status = ok(self.client.get(media, headers=auth, params={
                "command": "STATUS", "media_id": media_id}))
            info = status.json()["data"].get("processing_info") or {}
        ok(self.client.post(f"{self.endpoint}/2/tweets", headers=auth, json={
            "text": caption, "media": {"media_ids": [media_id]}}))


class NaivePostApi(NaiveClient):
    """A common tus client plus one publish call: no journal, no key, instant retries."""

    TUS: ClassVar[dict[str, str]] = TUS

    def _retry(self, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        """Send; on a 5xx or a transport error send again at once; ``None``: gave up."""
        for _ in range(self.attempts):
            try:
                response = send()
            except httpx.TransportError:
                continue
            if response.status_code < 500:
                return response
        return None

    def post(self, path: Path, data: bytes, caption: str, *, token: str) -> bool:
        """Upload then publish; ``True`` if it believes the video was posted."""
        del token  # the post-api convention takes no token here
        files = f"{self.endpoint}/"  # the post's endpoint: the tus creation URL
        name = base64.b64encode(path.name.encode()).decode()
        created = self._retry(lambda: self.client.post(files, headers={
            **self.TUS, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"}))
        if created is None or created.status_code != 201:
            return False
        url = str(httpx.URL(files).join(created.headers["location"]))
        offset = 0
        while offset < len(data):
            new = self._send_chunk(url, data, offset)
            if new is None:
                return False
            offset = new
        publish = str(httpx.URL(files).join("/posts"))
        published = self._retry(lambda: self.client.post(
            publish, json={"upload_url": url, "metadata": {"caption": caption}}))
        return published is not None and published.status_code < 300

    def _send_chunk(self, url: str, data: bytes, offset: int) -> int | None:
        """PATCH one chunk; after a failure, HEAD for the offset first (as tus-js-client does)."""
        for attempt in range(self.attempts):
            try:
                if attempt:
                    head = self.client.head(url, headers=self.TUS)
                    if head.status_code >= 500:
                        continue
                    if head.status_code != 200:
                        return None
                    offset = int(head.headers["upload-offset"])
                    if offset >= len(data):
                        return offset
                answer = self.client.patch(url, content=data[offset:offset + self.chunk_size],
                                           headers={**self.TUS, "Upload-Offset": str(offset),
                                                    "Content-Type":
                                                    "application/offset+octet-stream"})  # fmt: skip
            except httpx.TransportError:
                continue
            if answer.status_code >= 500:
                continue
            if answer.status_code != 204:
                return None
            return int(answer.headers["upload-offset"])
        return None
