"""A platform's status page: posts wait while it reports a major outage."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest

from steadypost import HostRegistry, Journal, PostState, StatusPageOptions, StatusPages, Uploader
from steadypost.errors import HostUnavailableError, ProtocolError, StatusError
from steadypost.flow import Request, Response
from steadypost.hosts.statuspage import STATUS_KIND, PageStatus, fetch_status
from steadypost.testing import FakeClock, PlatformSimulator

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
STATUS_URL = "https://status.platform.test/api/v2/status.json"


class StatusPage:
    """A Statuspage-style ``status.json`` whose indicator a test changes."""

    def __init__(self) -> None:
        self.indicator = "major"
        self.description = "Partial System Outage"
        self.status = 200
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, text="<html>oops</html>")
        body = {
            "page": {"id": "abc", "name": "Platform", "url": "https://status.platform.test"},
            "status": {"indicator": self.indicator, "description": self.description},
        }
        return httpx.Response(200, json=body)






@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(hashlib.sha256(b"seed").digest() * 3000)
    return path


def uploader(sim: PlatformSimulator, page: StatusPage, journal: Journal, clock: FakeClock,
             **kw: object) -> Uploader:  # fmt: skip
    inner = sim.transport()

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "status.platform.test":
            assert "authorization" not in request.headers  # the token is for the platform
            return page(request)
        return inner.handle_request(request)

    client = httpx.Client(transport=httpx.MockTransport(route), base_url=BASE)
    return Uploader(
        client=client, journal=journal, sleep=clock.sleep, clock=clock.now,
        headers={"Authorization": "Bearer t0ken"}, hosts=HostRegistry(rng=random.Random(1)),
        status_pages=kw.pop("status_pages", {BASE: STATUS_URL}), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_fetch_status_is_one_get_and_reads_the_indicator() -> None:
    flow = fetch_status(STATUS_URL, clock=lambda: 42.0)
    request = next(flow)
    assert isinstance(request, Request)
    assert (request.method, request.url) == ("GET", STATUS_URL)
    assert request.header("accept") == "application/json"
    body = json.dumps({"status": {"indicator": "Critical", "description": "Major Outage"}})
    with pytest.raises(StopIteration) as done:
        flow.send(Response(200, MappingProxyType({}), body.encode()))
    assert done.value.value == PageStatus("critical", "Major Outage", 42.0)


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, b""), (200, b"<html>maintenance</html>"), (200, b'{"status": "fine"}'), (200, b"[]")],
)
def test_an_unusable_status_answer_is_an_error(status: int, body: bytes) -> None:
    flow = fetch_status(STATUS_URL, clock=lambda: 0.0)
    next(flow)
    with pytest.raises((StatusError, ProtocolError)):
        flow.send(Response(status, MappingProxyType({}), body))


def test_posts_wait_while_the_status_page_reports_a_major_outage(
    video: Path, journal: Journal, clock: FakeClock, tmp_path: Path
) -> None:
    sim = PlatformSimulator(clock=clock)
    page = StatusPage()
    start = clock.now()
    with uploader(sim, page, journal, clock) as up:
        post = up.post(video, ENDPOINT)
        assert post.state is PostState.WAITING
        assert sim.requests == []  # nothing went to the platform
        assert len(page.requests) == 1
        assert post.next_attempt_ts == pytest.approx(start + 60)
        assert post.last_error == (
            "platform.test is recovering: its status page reports a major outage "
            "(Partial System Outage); next look in 60 s"
        )
        # Within the minute: no second look, and still waiting.
        clock.advance(20)
        other = tmp_path / "other.mp4"
        other.write_bytes(b"x" * 5000)
        assert up.post(other, ENDPOINT).state is PostState.WAITING
        assert len(page.requests) == 1
        assert sim.requests == []

        page.indicator, page.description = "none", "All Systems Operational"
        clock.advance_to(start + 60)
        done = up.resume_pending()
    assert [p.state for p in done] == [PostState.CONFIRMED, PostState.CONFIRMED]
    assert len(page.requests) == 2  # one look a minute
    assert len(sim.uploads) == 2


@pytest.mark.parametrize("indicator", ["none", "minor", "maintenance"])
def test_other_indicators_let_uploads_go(
    indicator: str, video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    page = StatusPage()
    page.indicator = indicator
    with uploader(sim, page, journal, clock) as up:
        assert up.post(video, ENDPOINT).state is PostState.CONFIRMED
    assert len(page.requests) == 1


def test_an_unreadable_status_page_never_blocks_uploads(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    page = StatusPage()
    page.status = 500
    with uploader(sim, page, journal, clock) as up:
        assert up.post(video, ENDPOINT).state is PostState.CONFIRMED
    stored = PageStatus.from_json(journal.get_host_state("https://platform.test:443", STATUS_KIND))
    assert stored is not None
    assert stored.indicator == "unknown"


def test_origins_without_a_status_page_are_not_looked_up(
    video: Path, journal: Journal, clock: FakeClock
) -> None:
    sim = PlatformSimulator(clock=clock)
    page = StatusPage()
    pages = {"https://elsewhere.test": STATUS_URL}
    with uploader(sim, page, journal, clock, status_pages=pages) as up:
        assert up.post(video, ENDPOINT).state is PostState.CONFIRMED
    assert page.requests == []


def test_the_last_look_is_shared_through_the_journal(
    video: Path, journal: Journal, clock: FakeClock, tmp_path: Path
) -> None:
    sim = PlatformSimulator(clock=clock)
    page = StatusPage()
    with uploader(sim, page, journal, clock) as daemon:
        assert daemon.post(video, ENDPOINT).state is PostState.WAITING
    clock.advance(30)
    other = tmp_path / "cli.mp4"
    other.write_bytes(b"y" * 5000)
    with Journal(journal.path, clock=clock.now) as cli_journal, uploader(
        sim, page, cli_journal, clock
    ) as cli:  # another process: its own StatusPages, the same journal
        post = cli.post(other, ENDPOINT)
    assert post.state is PostState.WAITING
    assert len(page.requests) == 1
    assert post.next_attempt_ts == pytest.approx(clock.now() + 30)


def test_the_interval_is_configurable(video: Path, journal: Journal, clock: FakeClock) -> None:
    sim = PlatformSimulator(clock=clock)
    page = StatusPage()
    pages = StatusPages({BASE: STATUS_URL}, StatusPageOptions(interval_s=300))
    with uploader(sim, page, journal, clock, status_pages=pages) as up:
        post = up.post(video, ENDPOINT)
    assert post.next_attempt_ts == pytest.approx(clock.now() + 300)
    refusal = pages.refusal(ENDPOINT, clock.now() + 100)
    assert isinstance(refusal, HostUnavailableError)
    assert refusal.retry_after == pytest.approx(200)
    with pytest.raises(ValueError, match="interval_s"):
        StatusPageOptions(interval_s=0)
