"""Scripted tus answers for unit tests through pytest-httpx, and injected time.

``ScriptedTus`` is a deliberately small stateful tus endpoint used as a
pytest-httpx callback: it keeps the bytes it received and answers by the
protocol, unless a test queued a canned answer (status, headers, or an httpx
exception) for the next request of a method. It is not the simulator: it
exists to pin each protocol branch exactly.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections import deque
from dataclasses import dataclass, field

import httpx

ENDPOINT = "https://up.example.com/files/"


@dataclass
class Canned:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""
    error: Exception | None = None
    keep_body: int | None = None
    """For a PATCH: store this many of its bytes before answering (a partial write)."""


class ScriptedTus:
    def __init__(
        self,
        *,
        endpoint: str = ENDPOINT,
        extensions: str = "creation,termination,expiration",
        checksum_algorithms: str | None = None,
        location_base: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.extensions = extensions
        self.checksum_algorithms = checksum_algorithms
        self.location_base = location_base or endpoint
        self.uploads: dict[str, bytearray] = {}
        self.lengths: dict[str, int] = {}
        self.canned: dict[str, deque[Canned]] = {}
        self.requests: list[httpx.Request] = []
        self._next = 0

    def queue(self, method: str, *answers: Canned) -> None:
        self.canned.setdefault(method, deque()).extend(answers)

    def sha256(self, url: str) -> str:
        return hashlib.sha256(self.uploads[url]).hexdigest()

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self.canned.get(request.method)
        if queued:
            answer = queued.popleft()
            if answer.keep_body is not None:
                url = str(request.url)
                self.uploads[url].extend(request.content[: answer.keep_body])
            if answer.error is not None:
                raise answer.error
            return httpx.Response(answer.status, headers=answer.headers, content=answer.content)
        return getattr(self, "_" + request.method.lower())(request)

    def _base(self) -> dict[str, str]:
        return {"Tus-Resumable": "1.0.0"}

    def _options(self, request: httpx.Request) -> httpx.Response:
        headers = {**self._base(), "Tus-Version": "1.0.0", "Tus-Extension": self.extensions}
        if self.checksum_algorithms:
            headers["Tus-Checksum-Algorithm"] = self.checksum_algorithms
        return httpx.Response(204, headers=headers)

    def _post(self, request: httpx.Request) -> httpx.Response:
        self._next += 1
        location = f"{self.location_base}u{self._next}"
        url = str(httpx.URL(location).copy_with(username=None, password=None))
        self.uploads[url] = bytearray(request.content)
        self.lengths[url] = int(request.headers["Upload-Length"])
        headers = {**self._base(), "Location": location}
        if request.content:
            headers["Upload-Offset"] = str(len(request.content))
        return httpx.Response(201, headers=headers)

    def _head(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url not in self.uploads:
            return httpx.Response(404, headers=self._base())
        headers = {
            **self._base(),
            "Upload-Offset": str(len(self.uploads[url])),
            "Upload-Length": str(self.lengths[url]),
        }
        return httpx.Response(200, headers=headers)

    def _patch(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url not in self.uploads:
            return httpx.Response(404, headers=self._base())
        data = self.uploads[url]
        if int(request.headers["Upload-Offset"]) != len(data):
            return httpx.Response(409, headers=self._base())
        checksum = request.headers.get("Upload-Checksum")
        if checksum:
            algo, b64 = checksum.split(" ")
            if hashlib.new(algo, request.content).digest() != base64.b64decode(b64):
                return httpx.Response(460, headers=self._base())
        data.extend(request.content)
        return httpx.Response(204, headers={**self._base(), "Upload-Offset": str(len(data))})

    def _delete(self, request: httpx.Request) -> httpx.Response:
        self.uploads.pop(str(request.url), None)
        return httpx.Response(204, headers=self._base())


class FakeTime:
    """A clock and sleeper pair: sleeping advances the clock and is recorded."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def seeded() -> random.Random:
    return random.Random(1234)
