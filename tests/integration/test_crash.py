"""Crash tests: ``kill -9`` a process that is posting videos, then finish the job.

Every trial runs ``tests/crash_child.py`` (a real steadypost run in its own process) against
the reference tus server, kills it with SIGKILL at a seeded moment (after a random number of
its progress markers, or after a random delay that may fall in its start-up or in the
journal's creation), sometimes also kills one or two of the runs that resume after it, and
then resumes in this process until nothing is pending. Then:

* no post lost: every file whose ``ADDED`` marker was printed is in the journal, and every
  file the child was asked to post ends ``confirmed`` (files the child never journaled are
  posted again by the test, as a user would);
* none duplicated: one post per file in the journal, and exactly one *completed* upload per
  post on the server, the one the journal names;
* no corruption: the server's bytes have the file's SHA-256, so has the journal's post, and
  the journal passes ``Journal.check()``;
* the only other uploads on the server are incomplete ones whose creation answer was lost
  with the killed process (the journal never learnt their URL), at most one per kill.

``STEADYPOST_CRASH_TRIALS=N`` runs N seeded trials instead of 32 (a soak).

Resuming runs take over a dead run's posts at once: the child and the journal run on a
clock moved ahead by more than the lease (``--clock-offset``), so no test waits a lease out.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from steadypost import Journal, Post, PostOptions, PostState, RetryPolicy, Uploader
from tusd import StoredUpload, TusServer

CHILD = Path(__file__).resolve().parent.parent / "crash_child.py"
KiB = 1024
MiB = 1024 * KiB
CHUNK = 256 * KiB
BLOCK = 64 * KiB
LEASE_S = 2.0
STEP_S = 60.0
"""How far each later run's clock is ahead of the one before: far more than the lease."""
CHILD_TIMEOUT_S = 60.0
SEEDS = range(int(os.environ.get("STEADYPOST_CRASH_TRIALS", "32")))
"""Seeded trials; set ``STEADYPOST_CRASH_TRIALS=500`` for a longer soak."""


# ---------------------------------------------------------------------------- helpers


class SkewedClock:
    """``time.time()`` plus an offset the test moves forward."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def __call__(self) -> float:
        return time.time() + self.offset_s


def make_file(path: Path, size: int, rng: random.Random) -> Path:
    path.write_bytes(rng.randbytes(size))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ChildRun:
    lines: list[str]
    killed: bool
    returncode: int
    stderr: str

    def added(self) -> dict[str, str]:
        """post_id -> path for every ``ADDED`` marker the child printed."""
        found = {}
        for line in self.lines:
            if line.startswith("ADDED "):
                _, post_id, path = line.split(" ", 2)
                found[post_id] = path
        return found

    @property
    def owner(self) -> str | None:
        for line in self.lines:
            if line.startswith("READY "):
                return line.split(" ", 1)[1]
        return None


def start_child(args: list[str], log: Path, **popen: object) -> subprocess.Popen[str]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            **popen,  # type: ignore[call-overload]
        )


def finish_child(
    proc: subprocess.Popen[str], log: Path, *, kill_after: int | None = None,
    kill_delay_s: float = 0.0, kill_at_s: float | None = None,
) -> ChildRun:  # fmt: skip
    """Read the child's markers to the end; SIGKILL it at the chosen moment, if it gets there.

    ``kill_after``: once that many markers were read (+ ``kill_delay_s``). ``kill_at_s``:
    that many seconds after now, whatever it is doing.
    """
    assert proc.stdout is not None
    killed = threading.Event()
    timed_out = threading.Event()
    lock = threading.Lock()

    def kill() -> None:
        with lock:
            if proc.returncode is None and not killed.is_set():
                killed.set()
                proc.send_signal(signal.SIGKILL)

    def watchdog() -> None:
        timed_out.set()
        kill()

    timers = [threading.Timer(CHILD_TIMEOUT_S, watchdog)]
    if kill_at_s is not None:
        timers.append(threading.Timer(kill_at_s, kill))
    for timer in timers:
        timer.start()
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if kill_after is not None and not killed.is_set() and len(lines) >= kill_after:
                if kill_delay_s:
                    time.sleep(kill_delay_s)
                kill()
        with lock:
            proc.wait()
    finally:
        for timer in timers:
            timer.cancel()
        proc.stdout.close()
    stderr = log.read_text(errors="replace")
    assert not timed_out.is_set(), f"child hung: {lines[-5:]}\n{stderr}"
    if proc.returncode != -signal.SIGKILL:
        killed.clear()  # it had exited by itself before the signal
    if not killed.is_set():
        failed = f"child failed ({proc.returncode}): {lines[-5:]}\n{stderr}"
        assert proc.returncode == 0, failed
        assert lines[-1:] == ["EXIT"], failed
    return ChildRun(lines, killed.is_set(), proc.returncode, stderr)


def run_child(args: list[str], log: Path, **kill: float | None) -> ChildRun:
    """Run ``crash_child.py args``; ``kill``: see :func:`finish_child`."""
    return finish_child(start_child(args, log), log, **kill)  # type: ignore[arg-type]


def markers_for(remaining_bytes: int) -> int:
    """About how many markers a run prints while sending ``remaining_bytes``."""
    return remaining_bytes // BLOCK + remaining_bytes // CHUNK + 2


def pending(journal: Journal) -> list[Post]:
    return [p for p in journal.list() if not p.state.finished]


def journaled_urls(journal: Journal, post_id: str) -> set[str]:
    """Every upload URL the journal ever recorded for a post."""
    urls = set()
    for event in journal.events(post_id):
        url = event.data.get("upload_url")
        if isinstance(url, str):
            urls.add(url)
    post = journal.get(post_id)
    if post.upload_url:
        urls.add(post.upload_url)
    return urls


def uploads_by_post(server: TusServer) -> dict[str | None, list[StoredUpload]]:
    found: dict[str | None, list[StoredUpload]] = defaultdict(list)
    for upload in server.uploads():
        found[upload.metadata.get("post_id")].append(upload)
    return found


@dataclass
class Trial:
    seed: int
    files: list[Path]
    journal_path: Path
    log: Path
    kills: int = 0
    story: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.story.append(text)

    def __str__(self) -> str:
        return f"seed {self.seed}: " + "; ".join(self.story)


def check_outcome(trial: Trial, server: TusServer, journal: Journal, added: dict[str, str]) -> None:
    """The assertions every trial ends with (see the module docstring)."""
    journal.check()
    posts = journal.list()
    by_path: dict[str, list[Post]] = defaultdict(list)
    for post in posts:
        by_path[post.path].append(post)
    wanted = {str(f) for f in trial.files}
    # None lost, none duplicated: one post per file, and no post for anything else.
    assert set(by_path) == wanted, trial
    counts = {path: len(found) for path, found in by_path.items()}
    assert set(counts.values()) == {1}, (trial, counts)
    for post_id, path in added.items():
        assert [p.post_id for p in by_path[path]] == [post_id], (trial, "ADDED post lost", path)

    stored = uploads_by_post(server)
    assert set(stored) <= {p.post_id for p in posts}, (trial, "upload of no post", stored.keys())
    orphans = 0
    for post in posts:
        file = Path(post.path)
        digest = sha256_of(file)
        assert post.state is PostState.CONFIRMED, (trial, post)
        assert post.offset == post.identity.size == file.stat().st_size, (trial, post)
        assert post.identity.sha256 == digest, (trial, post)
        uploads = stored.get(post.post_id, [])
        completed = [u for u in uploads if u.completed]
        assert len(completed) == 1, (trial, post.post_id, uploads)
        [done] = completed
        assert post.upload_url == server.upload_url(done.id), (trial, post, done)
        assert server.sha256(done.id) == digest, (trial, "corrupt", post)
        known = journaled_urls(journal, post.post_id)
        assert known == {post.upload_url}, (trial, "a journaled upload was abandoned", known)
        for extra in uploads:
            if extra is done:
                continue
            # A creation request whose answer died with the killed process.
            assert not extra.completed, (trial, extra)
            assert server.upload_url(extra.id) not in known, (trial, extra)
            orphans += 1
    assert orphans <= trial.kills, (trial, f"{orphans} orphan uploads for {trial.kills} kills")
    trial.note(f"{orphans} orphans")


def resume_in_process(trial: Trial, endpoint: str, clock: SkewedClock) -> Journal:
    """Resume until nothing is pending; returns the journal (open) for the checks."""
    journal = Journal(trial.journal_path, clock=clock)
    up = Uploader(
        journal=journal,
        clock=clock,
        chunk_size=CHUNK,
        retry=RetryPolicy(base_s=0.01, cap_s=0.1, deadline_s=60.0),
        post_options=PostOptions(lease_s=LEASE_S),
    )
    with up:
        for _ in range(5):
            clock.offset_s += STEP_S
            up.resume_pending()
            if not pending(journal):
                break
    left = pending(journal)
    assert not left, (trial, "still pending", left)
    return journal


# ------------------------------------------------------------------------------ tests


@pytest.fixture
def server(tus_server: TusServer) -> Iterator[TusServer]:
    """``tus_server``, SIGKILLed after the test instead of stopped.

    The handler of a request whose client was SIGKILLed mid-body never settles in
    ``tests/tus_server.mjs`` (its in-flight count stays above 0), so a SIGTERM shutdown
    would wait out its 5 s grace period at every teardown. Its storage was checked by then.
    """
    yield tus_server
    tus_server.kill()


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_while_posting_then_resume(
    server: TusServer, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    files = [
        make_file(tmp_path / f"video-{i}.mp4", rng.randint(2 * MiB, 4 * MiB), rng)
        for i in range(rng.randint(1, 3))
    ]
    trial = Trial(seed, files, tmp_path / "journal.sqlite3", tmp_path / "children.log")
    endpoint = server.endpoint
    common = ["--lease", str(LEASE_S), "--chunk", str(CHUNK), "--block", str(BLOCK)]

    # 1. The posting run, killed at a seeded moment.
    total = 2 + sum(markers_for(f.stat().st_size) for f in files)
    if rng.random() < 0.15:
        # A random instant from start-up on: may hit imports or the journal's creation.
        at = rng.uniform(0.0, 0.6)
        trial.note(f"post killed at {at:.3f} s")
        first = run_child(
            [*common, str(trial.journal_path), endpoint, "post", *map(str, files)],
            trial.log, kill_at_s=at,
        )  # fmt: skip
    else:
        after = rng.randint(1, total - 1)
        delay = rng.choice([0.0, 0.0, rng.uniform(0.0, 0.004)])
        trial.note(f"post killed after {after}/{total} markers +{delay * 1000:.1f} ms")
        first = run_child(
            [*common, str(trial.journal_path), endpoint, "post", *map(str, files)],
            trial.log, kill_after=after, kill_delay_s=delay,
        )  # fmt: skip
    trial.kills += first.killed
    trial.note(f"last marker {first.lines[-1:]}, killed={first.killed}")
    added = first.added()

    # 2. Nothing the child journaled is lost; what it never journaled is posted again.
    clock = SkewedClock()
    generation = 1
    clock.offset_s = generation * STEP_S
    with Journal(trial.journal_path, clock=clock) as journal:
        journal.check()
        in_journal = {p.post_id: p.path for p in journal.list()}
        for post_id, path in added.items():
            assert in_journal.get(post_id) == path, (trial, "lost after kill", post_id)
        missing = [f for f in files if str(f) not in in_journal.values()]
        with Uploader(journal=journal, clock=clock) as up:
            for f in missing:
                up.add(f, endpoint)
        trial.note(f"{len(missing)} files re-added")
        left = sum(p.identity.size - p.offset for p in pending(journal))

    # 3. Sometimes the resuming run is killed too (once or twice), each on a later clock.
    for _ in range(rng.choice([0, 0, 1, 2])):
        generation += 1
        after = rng.randint(1, max(2, markers_for(left)))
        run = run_child(
            [*common, "--clock-offset", str(generation * STEP_S), str(trial.journal_path),
             endpoint, "resume"],
            trial.log, kill_after=after,
        )  # fmt: skip
        trial.kills += run.killed
        trial.note(f"resume killed after {after} markers: {run.killed}")

    # 4. Resume here until nothing is pending, then check everything.
    clock.offset_s = generation * STEP_S
    journal = resume_in_process(trial, endpoint, clock)
    try:
        check_outcome(trial, server, journal, added)
    finally:
        journal.close()


def test_two_processes_resume_the_same_journal_at_once(
    server: TusServer, tmp_path: Path
) -> None:
    rng = random.Random(1234)
    journal_path = tmp_path / "journal.sqlite3"
    log = tmp_path / "children.log"
    files = [
        make_file(tmp_path / f"v{i}.mp4", rng.randint(1 * MiB, 2 * MiB), rng) for i in range(8)
    ]
    with Journal(journal_path) as journal, Uploader(journal=journal) as up:
        post_ids = [up.add(f, server.endpoint).post_id for f in files]

    # A long lease: a slow machine must not make the two take a post from each other.
    args = ["--lease", "120", "--chunk", str(CHUNK), "--block", str(BLOCK), "--wait-go",
            str(journal_path), server.endpoint, "resume"]  # fmt: skip
    procs = [start_child(args, log, stdin=subprocess.PIPE) for _ in range(2)]
    runners = []
    for proc in procs:  # both are ready (imports done, journal open) before either starts
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[:1] == ["READY"], ready
        runners.append(ready[1])
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    threads = [
        threading.Thread(target=finish_child, args=(proc, log),
                         kwargs={"kill_after": None, "kill_delay_s": 0.0})
        for proc in procs
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [proc.returncode for proc in procs] == [0, 0], log.read_text()

    stored = uploads_by_post(server)
    uploaded_by: dict[str, list[str]] = defaultdict(list)
    with Journal(journal_path) as journal:
        journal.check()
        for post_id, file in zip(post_ids, files, strict=True):
            post = journal.get(post_id)
            assert post.state is PostState.CONFIRMED, post
            events = journal.events(post_id)
            # The state events carry the owner: one claim, and the confirmation, by one run.
            moves = [e for e in events if e.kind == "state" and e.data.get("from") is not None]
            owners = {e.data.get("owner") for e in moves}
            claims = [e for e in moves if e.data.get("to") == "uploading"]
            assert len(claims) == 1, (post_id, moves)
            assert len(owners) == 1, (post_id, moves)
            [owner] = owners
            assert owner in runners, (owner, runners)
            uploaded_by[owner].append(post_id)
            # Every request of the post came after its one claim.
            requests = [e.event_id for e in events if e.kind == "request"]
            assert requests
            assert min(requests) > claims[0].event_id
            [upload] = stored[post_id]  # exactly one upload resource on the server
            assert upload.completed
            assert server.sha256(upload.id) == sha256_of(file)
            assert post.upload_url == server.upload_url(upload.id)
    assert len(server.uploads()) == len(files)
    # The server's own request log: one creation request per post, nothing refused.
    requests = [line for line in server.log_text().splitlines() if " -> " in line]
    assert sum(" POST /files/ -> 201" in line for line in requests) == len(files), requests
    assert not [line for line in requests if " -> 4" in line or " -> 5" in line], requests
    # Both really ran at once: each uploaded some of the posts, none both.
    assert sorted(uploaded_by) == sorted(runners), dict(uploaded_by)
