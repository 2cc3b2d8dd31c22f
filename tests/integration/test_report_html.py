"""``steadypost report --format html`` rendered by a real browser (headless Chromium).

A journal gets an outage story from the simulator: a post that waits out a 503 storm, one
whose last answer was lost (unconfirmed, confirmed later without a re-post), one the
platform had not got (re-posted once), one refused (403). The page must show the summary
figures, one drawn row per post on one time axis, the request ids, load nothing from
anywhere, and carry no local detail (folders, host, process).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from browser import CHROMIUM, Browser, png_size
from steadypost import RetryPolicy
from steadypost.cli import cli
from steadypost.cli.app import Runtime
from steadypost.testing import FakeClock, Outage, PlatformSimulator, ProcessedButTimeout, Respond

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (`apt-get install -y chromium`)"),
]
ENDPOINT = "https://platform.test/files/"


def _story(tmp_path: Path) -> tuple[Path, Path]:
    """The journal of an outage; returns (the folder of the videos, the HTML report)."""
    clock = FakeClock(start=1_764_597_600.0)  # 2025-12-01 14:00 UTC
    sim = PlatformSimulator(clock=clock)
    client = httpx.Client(transport=sim.transport())
    folder = tmp_path / "My Videos" / "2025"
    folder.mkdir(parents=True)

    def run(*args: str) -> None:
        runtime = Runtime(clock=clock.now, uploader_options={
            "client": client, "sleep": clock.sleep,
            "retry": RetryPolicy(max_attempts=4, deadline_s=None)})  # fmt: skip
        CliRunner().invoke(cli, list(args), obj=runtime, catch_exceptions=False)

    def video(name: str, size: int) -> str:
        path = folder / name
        block = hashlib.sha256(name.encode()).digest()
        path.write_bytes((block * (size // len(block) + 1))[:size])
        return str(path)

    run("upload", video("calm-morning.mp4", 300_000), "-e", ENDPOINT)  # no trouble: not shown
    clock.advance(120)
    now = clock.now()
    sim.faults.add(Respond(status=503, retry_after=60, times=2,
                           headers=(("X-Request-Id", "req-7f3a9c"),)),
                   Outage(now, now + 600, retry_after=60))  # fmt: skip
    run("upload", video("sunset-timelapse.mp4", 600_000), "-e", ENDPOINT, "--chunk-size",
        "128KiB", "--wait-up-to", "30m")  # fmt: skip
    sim.faults.clear()
    sim.faults.add(ProcessedButTimeout(on={"final_patch"}),
                   Respond(status=503, methods={"HEAD"}, times=5))  # fmt: skip
    run("upload", video("beach-day.mp4", 400_000), "-e", ENDPOINT, "--chunk-size", "128KiB",
        "--no-wait")  # fmt: skip
    sim.faults.clear()
    sim.faults.add(Respond(status=500, methods={"PATCH"}, times=1),
                   Respond(status=503, methods={"HEAD"}, times=5))  # fmt: skip
    run("upload", video("mountain-hike.mp4", 120_000), "-e", ENDPOINT, "--no-wait")
    sim.faults.clear()
    clock.advance(1800)
    run("verify", "--all")
    run("resume")
    sim.faults.add(Respond(status=403, times=None))
    run("upload", video("private-vlog.mp4", 200_000), "-e", ENDPOINT)
    report = tmp_path / "outage.html"
    run("report", "--format", "html", "-o", str(report))
    return folder, report


def test_the_html_report_is_one_self_contained_page_without_local_details(
    tmp_path: Path,
) -> None:
    folder, report = _story(tmp_path)
    page = report.read_text(encoding="utf-8")
    for loader in ("<script", "<link", "<img", "<iframe", "src=", "href=", "@import", "url("):
        assert loader not in page, loader
    assert "default-src 'none'" in page  # and the browser may load nothing at all
    assert str(folder) not in page
    assert "My Videos" not in page
    assert not re.search(r"\b[\w.-]+:\d{1,10}:[0-9a-f]{16}\.[0-9a-f]{8}\b", page)  # owners
    assert f"on host {socket.gethostname()}" not in page
    assert "sunset-timelapse.mp4" in page
    assert "calm-morning.mp4" not in page  # it had no trouble


def test_chromium_draws_the_summary_the_posts_and_one_time_axis(tmp_path: Path) -> None:
    _, report = _story(tmp_path)
    with Browser(report.as_uri(), width=1280, height=1400) as browser:
        browser.wait_loaded()
        seen = browser.evaluate("""(() => {
            const box = (el) => { const r = el.getBoundingClientRect();
                                  return [r.x, r.y, r.width, r.height]; };
            const svg = document.querySelector('#timeline');
            return {
              figures: ['posts', 'confirmed-later', 'reposted'].map(
                  (id) => document.querySelector(`#${id} b`).textContent),
              window: document.querySelector('#outage-window').textContent,
              svg: box(svg),
              rows: [...document.querySelectorAll('#timeline .post-row')].map(
                  (g) => ({text: g.textContent, box: box(g)})),
              ticks: [...document.querySelectorAll('#timeline .tick text')].map(
                  (t) => [t.textContent, box(t)]),
              requests: document.querySelectorAll('#timeline .request').length,
              waits: document.querySelectorAll('#timeline .wait').length,
              titles: [...document.querySelectorAll('#timeline title')].map(
                  (t) => t.textContent).join('\\n'),
              tables: document.querySelectorAll('table').length,
              loaded: performance.getEntriesByType('resource').length,
            };
        })()""")
        shot = browser.screenshot(tmp_path / "report.png")
    assert seen["figures"] == ["4", "1", "1"]  # affected; confirmed later; re-posted once
    assert "UTC" in seen["window"]
    assert "503 ×" in seen["window"]
    svg_x, svg_y, svg_w, svg_h = seen["svg"]
    assert svg_w > 900
    assert svg_h > 150
    rows = seen["rows"]
    assert [r["text"].split()[0] for r in rows] == ["sunset-timelapse.mp4", "beach-day.mp4",
                                                     "mountain-hike.mp4", "private-vlog.mp4"]
    for row in rows:  # drawn inside the timeline, one under the other
        _x, y, w, h = row["box"]
        assert w > 100
        assert h > 10
        assert svg_y <= y
        assert y + h <= svg_y + svg_h
    assert [r["box"][1] for r in rows] == sorted(r["box"][1] for r in rows)
    ticks = seen["ticks"]
    assert len(ticks) >= 3
    assert all(re.fullmatch(r"(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d", label) for label, _ in ticks)
    xs = [b[0] for _, b in ticks]
    assert xs == sorted(xs)
    assert svg_x < xs[0]
    assert xs[-1] < svg_x + svg_w
    assert seen["requests"] >= 20
    assert seen["waits"] >= 5
    assert "request id req-7f3a9c" in seen["titles"]
    assert "→ 403" in seen["titles"]
    assert seen["tables"] == 4
    assert seen["loaded"] == 0  # nothing fetched: no network, no file but the page
    width, height = png_size(shot.read_bytes())
    assert width == 1280
    assert height > 1400
    assert shot.stat().st_size > 50_000  # drawn, not blank
    keep = os.environ.get("STEADYPOST_SCREENSHOTS")
    if keep:  # for a person to look at: STEADYPOST_SCREENSHOTS=/tmp/shots pytest ...
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copy(report, Path(keep) / "report.html")
