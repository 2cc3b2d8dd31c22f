"""``steadypost report``: text for people, the summary, and nothing local in the evidence."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import Cli, make_video
from test_cli import app as app  # the fixtures, shared

from steadypost.cli.evidence import scrub
from steadypost.testing import Outage


def test_scrub_leaves_out_owners_processes_and_folders() -> None:
    text = ("the lease ends now: its owner (steadypost process 1717 on host studio-mac) is gone; "
            "lease vm:1717:53b6fb8abfae05da.d9f06d03; file /home/ana/Videos/2025/beach.mp4 "
            "changed; see https://platform.test/files/abc")  # fmt: skip
    clean = scrub(text)
    assert "1717" not in clean
    assert "studio-mac" not in clean
    assert "53b6fb8abfae05da" not in clean
    assert "/home/ana" not in clean
    assert "file beach.mp4 changed" in clean
    assert "https://platform.test/files/abc" in clean  # the platform's own URLs stay


def test_report_text_and_json_sum_up_the_outage(app: Cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4")
    now = app.clock.now()
    app.sim.faults.add(Outage(now, now + 90, retry_after=30))
    assert app.upload(video).exit_code == 0
    text = app.run("report", "--format", "text")
    assert text.exit_code == 0, text.output
    first, second = text.stdout.splitlines()[:2]
    assert first == "1 post(s) affected; 0 confirmed later without a re-post; 0 re-posted once"
    assert second.startswith("the outage as this client saw it: ")
    assert "failed answers: 503 x" in second
    assert "clip.mp4  " in text.stdout
    assert str(tmp_path) not in text.stdout
    document = json.loads(app.run("report", "--format", "json").stdout)
    window = document["summary"]["outage_window"]
    assert window["answers"]["503"] >= 3
    assert window["start"] < window["end"]
    assert "journal" not in document  # the journal's path is local
    events = document["posts"][0]["events"]
    assert not any("owner" in e for e in events)
