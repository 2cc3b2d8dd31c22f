"""The daemon's pure parts: the scheduler, the watch rules, the lock, the log formats."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steadypost import FileIdentity, Journal, PostState
from steadypost.daemon import (
    DaemonLock,
    DaemonRunningError,
    Scheduler,
    Snapshot,
    StabilityTracker,
    ignored,
    lock_path_for,
    read_sidecar,
    read_status,
    running_daemon,
)
from steadypost.daemon.logs import JsonFormatter, PlainFormatter, under_journald
from steadypost.daemon.sites import Site, outcome_line
from steadypost.daemon.watch import SidecarError, read_sidecar_file, sidecar_for
from steadypost.lifecycle.group import Target
from steadypost.platforms import platform_for
from steadypost.testing import FakeClock

T0 = 1_800_000_000.0


# --- the scheduler -----------------------------------------------------------------------


def test_starts_at_most_concurrency_uploads_most_overdue_first() -> None:
    s = Scheduler(concurrency=2, poll_s=5)
    plan = s.plan(Snapshot(now=T0, due_uploads=["a", "b", "c"]))
    assert plan.uploads == ("a", "b")
    assert not plan.idle
    busy = s.plan(Snapshot(now=T0, due_uploads=["c"], running_uploads=frozenset({"a", "b"})))
    assert busy.uploads == ()
    one_free = s.plan(Snapshot(now=T0, due_uploads=["a", "c"], running_uploads=frozenset({"a"})))
    assert one_free.uploads == ("c",)  # a post that runs is never started twice


def test_one_check_at_a_time_besides_the_uploads() -> None:
    s = Scheduler(concurrency=1)
    plan = s.plan(Snapshot(now=T0, due_uploads=["u1", "u2"], due_checks=["c1", "c2"]))
    assert plan.uploads == ("u1",)
    assert plan.checks == ("c1",)
    later = s.plan(Snapshot(now=T0, due_checks=["c2"], running_checks=frozenset({"c1"}),
                            running_uploads=frozenset({"u1"})))  # fmt: skip
    assert later.checks == ()


def test_wakes_at_the_next_due_time_or_after_the_poll_interval() -> None:
    s = Scheduler(poll_s=2)
    assert s.plan(Snapshot(now=T0)).wake_at == T0 + 2
    assert s.plan(Snapshot(now=T0, next_due_at=T0 + 0.5)).wake_at == T0 + 0.5
    assert s.plan(Snapshot(now=T0, next_due_at=T0 + 900)).wake_at == T0 + 2
    assert Scheduler(poll_s=3600).plan(Snapshot(now=T0, next_due_at=T0 + 900)).wake_at == T0 + 900
    # a past due time that cannot start (slots full) never makes the loop spin
    full = s.plan(Snapshot(now=T0, due_uploads=["x"], next_due_at=T0 - 10,
                           running_uploads=frozenset({"a", "b"})))  # fmt: skip
    assert full.wake_at == T0 + 2
    assert s.plan(Snapshot(now=T0), wake_by=T0 + 1).wake_at == T0 + 1  # next folder scan


def test_a_post_that_just_ended_is_held_off_briefly() -> None:
    s = Scheduler(poll_s=10, holdoff_s=1.0)
    s.ended("a", T0)
    plan = s.plan(Snapshot(now=T0 + 0.2, due_uploads=["a"], next_due_at=T0))
    assert plan.uploads == ()
    assert plan.idle
    assert plan.wake_at == pytest.approx(T0 + 1.0)
    assert s.plan(Snapshot(now=T0 + 1.0, due_uploads=["a"])).uploads == ("a",)


def test_a_post_a_check_sent_back_is_uploaded_at_once() -> None:
    s = Scheduler(holdoff_s=5.0)
    s.ended("a", T0, "check")
    assert s.plan(Snapshot(now=T0, due_uploads=["a"])).uploads == ("a",)
    assert s.plan(Snapshot(now=T0, due_checks=["a"])).checks == ()


def test_nothing_starts_while_stopping_and_idle_says_when_once_may_exit() -> None:
    s = Scheduler()
    stopping = s.plan(Snapshot(now=T0, due_uploads=["a"], due_checks=["c"]), stopping=True)
    assert stopping.uploads == stopping.checks == ()
    assert stopping.idle
    assert not s.plan(Snapshot(now=T0, running_uploads=frozenset({"a"}))).idle
    assert s.plan(Snapshot(now=T0)).idle


def test_scheduler_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Scheduler(concurrency=0)
    with pytest.raises(ValueError, match="poll_s"):
        Scheduler(poll_s=0)


# --- watch rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "skip"),
    [("clip.mp4", False), ("Clip.MOV", False), (".clip.mp4", True), ("clip.mp4.part", True),
     ("clip.mp4.crdownload", True), ("clip.tmp", True), ("clip.mp4.json", True),
     ("clip.json", True), ("clip.mp4~", True), (".DS_Store", True), ("clip.PART", True)],
)  # fmt: skip
def test_ignored_names(name: str, skip: bool) -> None:
    assert ignored(name) is skip


def test_a_file_is_complete_once_unchanged_for_the_settle_time() -> None:
    t = StabilityTracker(settle_s=2.0)
    assert not t.observe("a", (10, 1), T0)  # first sight
    assert not t.observe("a", (10, 1), T0 + 1)  # not long enough
    assert not t.observe("a", (20, 2), T0 + 2.5)  # it grew: start over
    assert not t.observe("a", (20, 2), T0 + 4)
    assert t.observe("a", (20, 2), T0 + 4.5)
    t.keep_only([])
    assert t.watching == 0
    assert not t.observe("a", (20, 2), T0 + 5)  # forgotten: first sight again


def test_sidecar_metadata(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    assert sidecar_for(video) is None
    side = tmp_path / "clip.json"
    side.write_text(json.dumps({"caption": "Day one", "n": 3, "draft": False,
                                "metadata": {"playlist": "summer"}}))  # fmt: skip
    assert sidecar_for(video) == side
    assert read_sidecar(side) == {"caption": "Day one", "n": "3", "draft": "false",
                                  "playlist": "summer"}  # fmt: skip
    exact = tmp_path / "clip.mp4.json"
    exact.write_text('{"caption": "exact"}')
    assert sidecar_for(video) == exact  # clip.mp4.json wins over clip.json
    for bad in ('{"caption": ', "[1]", '{"a b": "x"}', '{"tags": ["a"]}', '{"metadata": 1}'):
        exact.write_text(bad)
        with pytest.raises(SidecarError):
            read_sidecar(exact)



def test_a_sidecar_names_the_platforms_of_its_video(tmp_path: Path) -> None:
    side = tmp_path / "clip.json"
    side.write_text('{"platforms": ["youtube", "tiktok", "youtube"], "caption": "Hi"}')
    sidecar = read_sidecar_file(side)
    assert sidecar.platforms == ("youtube", "tiktok")  # each once, in order
    assert dict(sidecar.metadata) == {"caption": "Hi"}  # not metadata itself
    side.write_text('{"platforms": "youtube, tiktok"}')
    assert read_sidecar_file(side).platforms == ("youtube", "tiktok")
    for bad in ('{"platforms": [1]}', '{"platforms": [""]}', '{"platforms": {"a": 1}}'):
        side.write_text(bad)
        with pytest.raises(SidecarError, match="platforms"):
            read_sidecar_file(side)


def test_site_targets_the_endpoint_or_its_destinations() -> None:
    assert Site().targets() == ()
    [tus] = Site(endpoint="http://127.0.0.1:1/files/").targets()
    assert (tus.name, tus.endpoint) == ("tus", "http://127.0.0.1:1/files/")
    youtube = Target(platform_for("youtube", {}, clock=lambda: T0), "http://127.0.0.1:2/")
    tiktok = Target(platform_for("tiktok", {}, clock=lambda: T0), "http://127.0.0.1:3/")
    site = Site(endpoint="http://127.0.0.1:1/files/", to=(youtube, tiktok))
    assert site.targets() == (youtube, tiktok)
    assert site.targets(["tiktok"]) == [tiktok]
    with pytest.raises(ValueError, match="no destination named vimeo"):
        site.targets(["vimeo"])


# --- the lock ------------------------------------------------------------------------------


def test_one_daemon_per_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    assert running_daemon(journal) is None
    with DaemonLock(journal) as first:
        info = first.acquire(now=T0)
        assert info.pid == os.getpid()
        path = lock_path_for(journal)
        assert path.name == "journal.sqlite3.daemon.lock"
        assert path.stat().st_mode & 0o777 == 0o600
        seen = running_daemon(journal)
        assert seen is not None
        assert (seen.pid, seen.started_at) == (os.getpid(), T0)
        with pytest.raises(DaemonRunningError, match=f"pid {os.getpid()}") as refused:
            DaemonLock(journal).acquire(now=T0)
        assert refused.value.info is not None
        first.note_error("disk full", T0 + 5)
        seen = running_daemon(journal)
        assert seen is not None
        assert seen.last_error == "disk full"
    assert running_daemon(journal) is None
    with DaemonLock(journal) as again:  # released: the next one starts
        again.acquire(now=T0 + 10)


def test_a_dead_daemons_lock_is_free(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    code = ("import sys, os; from steadypost.daemon import DaemonLock; "
            "DaemonLock(sys.argv[1]).acquire(now=1.0); os._exit(0)")  # dies holding it
    subprocess.run([sys.executable, "-c", code, str(journal)], check=True, timeout=30)
    assert lock_path_for(journal).read_text()  # its pid is still written there...
    assert running_daemon(journal) is None  # ...but the OS released the lock
    with DaemonLock(journal) as lock:
        assert lock.acquire(now=T0).pid == os.getpid()


# --- logs ----------------------------------------------------------------------------------


def _record(message: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("steadypost.daemon", level, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_log_formats() -> None:
    plain = PlainFormatter(journald=False).format(_record("clip.mp4 is up"))
    assert plain.endswith("INFO  clip.mp4 is up")
    assert plain[:4].isdigit()  # a timestamp first
    journald = PlainFormatter(journald=True).format(_record("slow down", logging.WARNING))
    assert journald == "<4>slow down"  # no timestamp: journald adds its own
    line = JsonFormatter().format(_record("clip.mp4 is up", post_id="01J", state="confirmed"))
    data = json.loads(line)
    assert data["message"] == "clip.mp4 is up"
    assert (data["level"], data["post_id"], data["state"]) == ("info", "01J", "confirmed")
    assert data["time"].endswith("Z")


def test_journald_is_detected_from_journal_stream(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as stream:
        st = os.fstat(stream.fileno())
        assert under_journald(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not under_journald(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not under_journald(stream, {})
    assert under_journald(io.StringIO(), {"JOURNAL_STREAM": "8:1234"})  # no fd: trust it


# --- journal helpers -------------------------------------------------------------------------


def _journal_with_post(tmp_path: Path, clock: FakeClock) -> tuple[Journal, str]:
    journal = Journal(tmp_path / "j.sqlite3", clock=clock.now)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"v" * 1000)
    post = journal.add(path=video, endpoint="http://127.0.0.1:1/files/",
                       identity=FileIdentity(1000, video.stat().st_mtime_ns))  # fmt: skip
    return journal, post.post_id


def test_status_reports_counts_next_times_and_the_last_error(tmp_path: Path) -> None:
    clock = FakeClock(start=T0)
    journal, post_id = _journal_with_post(tmp_path, clock)
    with journal:
        empty = read_status(journal, now=T0)
        assert empty.daemon is None
        assert empty.counts[PostState.QUEUED] == 1
        assert empty.next_upload_at == T0
        assert empty.next_check is None
        journal.claim(owner="me", post_id=post_id)
        journal.release(post_id, owner="me", next_attempt_at=T0 + 60, last_error="server busy")
        clock.advance(1)
        status = read_status(journal, now=clock.now())
    assert status.next_upload_at == T0 + 60
    assert status.last_error is not None
    assert (status.last_error.message, status.last_error.post_id) == ("server busy", post_id)


def test_outcome_lines() -> None:
    from steadypost import Post

    post = Post("01J", "tus", "http://x/", "/v/clip.mp4", FileIdentity(1, 1), PostState.FAILED,
                last_error="rejected")  # fmt: skip
    level, line = outcome_line("upload", post)
    assert level == logging.ERROR
    assert "clip.mp4 (post 01J) failed: rejected" in line


def test_each_post_gets_the_credentials_of_its_sites_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steadypost.cli.sites import load_sites

    monkeypatch.setenv("STEADYPOST_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("B_TOKEN", "b-secret")
    monkeypatch.delenv("C_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(
        'default_profile = "a"\n'
        '[profiles.a]\nendpoint = "https://a.example/files/"\ntoken = "a-secret"\n'
        '[profiles.b]\nendpoint = "https://b.example/files/"\ntoken_env = "B_TOKEN"\n'
        '[profiles.c]\nendpoint = "https://c.example/files/"\ntoken_env = "C_TOKEN"\n'
    )
    config.chmod(0o600)
    sites = load_sites(None)
    assert sites.endpoint == "https://a.example/files/"  # watched files go to the daemon's site
    assert sites.headers_for("https://a.example/files/1") == {"Authorization": "Bearer a-secret"}
    assert sites.headers_for("https://b.example/files/1") == {"Authorization": "Bearer b-secret"}
    assert not sites.foreign("https://b.example/files/1")
    assert sites.foreign("https://c.example/files/1")  # its token is not set: left alone
    assert sites.foreign("https://elsewhere.example/files/")  # no profile for it
    assert sites.headers_for("https://elsewhere.example/files/") == {}


def test_a_watched_file_whose_target_has_no_endpoint_waits_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from steadypost.daemon import Daemon, DaemonOptions

    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"v" * 100)
    clock = FakeClock(start=T0)
    site = Site(to=(Target(None, None), Target(None, "http://127.0.0.1:9/files/")))
    with Journal(tmp_path / "j.sqlite3", clock=clock.now) as journal:
        daemon = Daemon(journal, lambda: site, clock=clock.now,
                        options=DaemonOptions(watch=(folder,), settle_s=0, handle_signals=False))
        with caplog.at_level(logging.WARNING, logger="steadypost.daemon"):
            daemon._scan(T0)
            daemon._scan(T0 + 1)
        assert journal.list() == []  # nothing journaled, for neither target
    assert "has no default endpoint" in caplog.text
    assert "clip.mp4 waits until it is fixed" in caplog.text
