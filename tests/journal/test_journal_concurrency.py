"""Many workers, one journal: every post is claimed by exactly one of them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from test_journal_durability import child_env

from steadypost.journal import Journal, make_owner
from steadypost.models import FileIdentity, PostState

N_POSTS = 60


def fill(path: str | Path, n: int = N_POSTS) -> set[str]:
    with Journal(path) as j:
        return {
            j.add(path=f"v{i}.mp4", endpoint="https://e/", identity=FileIdentity(10, i)).post_id
            for i in range(n)
        }


def assert_each_claimed_once(path: str | Path, expected: set[str], claims: list[str]) -> None:
    assert Counter(claims).most_common(1)[0][1] == 1, "a post was claimed twice"
    assert set(claims) == expected
    with Journal(path) as j:
        assert j.counts()[PostState.CONFIRMED] == len(expected)
        for post_id in expected:
            moves = [(e.data["from"], e.data["to"]) for e in j.events(post_id) if e.kind == "state"]
            assert moves == [(None, "queued"), ("queued", "uploading"), ("uploading", "confirmed")]
        j.check()


def work(journal: Journal, owner: str, out: list[str]) -> None:
    while (post := journal.claim(owner=owner)) is not None:
        out.append(post.post_id)
        journal.transition(post.post_id, PostState.CONFIRMED, owner=owner)


@pytest.mark.parametrize("shared", [True, False], ids=["one-journal", "journal-per-thread"])
def test_threads_claim_each_post_once(journal_target: str, shared: bool) -> None:
    path = journal_target
    expected = fill(path)
    one = Journal(path) if shared else None
    claims: list[list[str]] = [[] for _ in range(4)]
    barrier = threading.Barrier(len(claims))
    errors: list[BaseException] = []

    def run(i: int) -> None:
        journal = one or Journal(path)
        try:
            barrier.wait()
            work(journal, f"thread-{i}", claims[i])
        except BaseException as exc:
            errors.append(exc)
        finally:
            if one is None:
                journal.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(claims))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if one is not None:
        one.close()
    assert errors == []
    assert_each_claimed_once(path, expected, [pid for part in claims for pid in part])


_WORKER = """
import hashlib, sys
from steadypost.journal import Journal, make_owner
from steadypost.models import PostState
journal, owner, chunk = Journal(sys.argv[1]), make_owner(), bytes(4 << 20)
print("ready", flush=True)
sys.stdin.readline()  # start together
while (post := journal.claim(owner=owner)) is not None:
    print(post.post_id, flush=True)
    digest = hashlib.sha256(chunk).hexdigest()  # "reading the file": others claim meanwhile
    journal.transition(post.post_id, PostState.CONFIRMED, owner=owner, sha256=digest)
journal.close()
"""


def run_at_once(n: int, script: str, *args: str, timeout: float = 120) -> list[str]:
    """Run ``n`` copies of a Python ``script`` that prints ``ready`` then waits for a line.

    Every copy is started and ready (imports done, journal open) before any
    is let go, so they all act at the same instant; returns their stdouts.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=child_env(),
        )
        for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    return [out for out, _ in outputs]


def test_processes_claim_each_post_once(journal_target: str) -> None:
    path = journal_target
    expected = fill(path)
    outputs = run_at_once(3, _WORKER, str(path))
    claims = [line for out in outputs for line in out.split()]
    assert_each_claimed_once(path, expected, claims)


def test_make_owner_names_this_process() -> None:
    a, b = make_owner(), make_owner()
    assert a != b
    host, pid, token = a.rsplit(":", 2)
    assert host
    assert pid == str(os.getpid())
    process, worker = token.split(".")
    assert len(process) == 16  # one per process: names its lock file beside the journal
    assert len(worker) == 8
    assert b.rsplit(":", 2)[2].split(".")[0] == process
