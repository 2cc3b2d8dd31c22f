"""A lease whose owner's process is gone is taken over at once, by ``Journal.claim`` itself.

Real processes on the real clock: a child claims a post with a 300 s lease, then it is
killed with SIGKILL, stopped with SIGSTOP, or left running. Only the dead one's post is
handed over before its lease expires; the stopped and the running ones keep theirs. An
owner name of steadypost 0.1 (``host:pid:random``) or of the caller's own making is only
ever taken over when its lease expires. Lock files of gone processes are tidied up once
no lease names them.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator

import pytest
from test_journal_durability import child_env

from steadypost.errors import LeaseHeldError
from steadypost.journal import Journal, make_owner
from steadypost.models import FileIdentity

LEASE_S = 300.0

_CLAIMER = """
import sys
from steadypost.journal import Journal, make_owner
journal, owner = Journal(sys.argv[1]), make_owner()
post = journal.claim(owner=owner, post_id=sys.argv[2], lease_s=300)
journal.checkpoint(post.post_id, owner=owner, lease_s=300, upload_url="http://u/1", offset=700)
print(owner, flush=True)
sys.stdin.readline()  # holds its lease until told to go, killed or stopped
"""


@pytest.fixture
def path(journal_target: str) -> str:
    """The journal (on each backend: on PostgreSQL the lock files are in a local directory)."""
    return journal_target


class Claimer:
    """A child process that claims one post and holds it."""

    def __init__(self, path: str, post_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(path), post_id], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.owner = self.proc.stdout.readline().strip()
        assert self.owner, self.proc.stderr.read() if self.proc.stderr else ""

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.communicate(timeout=30)


@pytest.fixture
def claimers(path: str) -> Iterator[list[Claimer]]:
    started: list[Claimer] = []
    yield started
    for claimer in started:
        claimer.close()


def add_posts(path: str, n: int) -> list[str]:
    with Journal(path) as j:
        return [j.add(path=f"/v/{i}.mp4", endpoint="https://e/",
                      identity=FileIdentity(1000, i)).post_id for i in range(n)]  # fmt: skip


def claimed_by(path: str, post_id: str, claimers: list[Claimer]) -> Claimer:
    claimer = Claimer(path, post_id)
    claimers.append(claimer)
    return claimer


def test_the_post_of_a_killed_process_is_taken_over_at_once(
    path: str, claimers: list[Claimer]
) -> None:
    [post_id] = add_posts(path, 1)
    dead = claimed_by(path, post_id, claimers)
    with Journal(path) as j:
        assert j.claim(owner=make_owner()) is None  # alive: its lease holds
        dead.kill()
        assert [p.post_id for p in j.due()] == [post_id]  # due at once, not in 300 s
        assert (j.next_due_at() or 0.0) <= j.get(post_id).updated_ts + 1
        me = make_owner()
        taken = j.claim(owner=me)
        assert taken is not None
        assert (taken.post_id, taken.lease_owner) == (post_id, me)
        assert (taken.upload_url, taken.offset) == ("http://u/1", 700)  # from its checkpoint
        note, moved = j.events(post_id)[-2:]
        assert note.kind == "note"
        assert f"steadypost process {dead.proc.pid} on host" in note.data["message"]
        assert "is gone" in note.data["message"]
        assert (moved.data["previous_owner"], moved.data["owner"]) == (dead.owner, me)
        assert moved.data["reason"] == "its owner's process is gone"
        # The dead owner, should its name come back, can write nothing more.
        with pytest.raises(LeaseHeldError):
            j.checkpoint(post_id, owner=dead.owner, offset=800)


def test_claim_by_id_takes_over_from_a_killed_process(path: str, claimers: list[Claimer]) -> None:
    [post_id] = add_posts(path, 1)
    dead = claimed_by(path, post_id, claimers)
    with Journal(path) as j:
        with pytest.raises(LeaseHeldError, match=f"steadypost process {dead.proc.pid} on host"):
            j.claim(owner=make_owner(), post_id=post_id)
        dead.kill()
        taken = j.claim(owner=make_owner(), post_id=post_id)
        assert taken is not None
        assert taken.lease_expires_at is not None
        assert taken.lease_expires_ts > j.get(post_id).updated_ts + LEASE_S - 1


def test_a_stopped_process_keeps_its_lease_until_it_expires(
    path: str, claimers: list[Claimer]
) -> None:
    [post_id] = add_posts(path, 1)
    stopped = claimed_by(path, post_id, claimers)
    stopped.proc.send_signal(signal.SIGSTOP)  # alive, only not running
    with Journal(path) as j:
        assert j.claim(owner=make_owner()) is None
        assert j.due() == []
        with pytest.raises(LeaseHeldError):
            j.claim(owner=make_owner(), post_id=post_id)
        later = j.get(post_id).lease_expires_ts
        assert later is not None
    with Journal(path, clock=lambda: later + 1) as j:  # its lease ran out: now it may be taken
        taken = j.claim(owner=make_owner())
        assert taken is not None
        assert j.events(post_id)[-1].data["reason"] == "lease expired"


def test_owner_names_of_other_forms_wait_for_their_lease(path: str) -> None:
    """steadypost 0.1's ``host:pid:random`` and a caller's own names: lease expiry only."""
    ids = add_posts(path, 2)
    gone_pid = 2**22 + 17  # above any pid_max: certainly no such process
    with Journal(path) as j:
        j.claim(owner=f"{os.uname().nodename}:{gone_pid}:abcdef12", post_id=ids[0])
        j.claim(owner="worker-1", post_id=ids[1])
        assert j.claim(owner=make_owner()) is None
        assert j.due() == []
        expires = j.get(ids[0]).lease_expires_ts
        assert expires is not None
    with Journal(path, clock=lambda: expires + LEASE_S) as j:
        assert {j.claim(owner="next") is not None for _ in ids} == {True}


def test_a_live_process_in_this_process_is_never_gone(path: str) -> None:
    [post_id] = add_posts(path, 1)
    with Journal(path) as j:
        j.claim(owner=make_owner(), post_id=post_id)  # another worker of this process
        assert j.claim(owner=make_owner()) is None


def test_lock_files_of_gone_processes_are_tidied_once_no_lease_names_them(
    path: str, claimers: list[Claimer]
) -> None:
    first, second, third = add_posts(path, 3)
    a = claimed_by(path, first, claimers)
    b = claimed_by(path, second, claimers)
    with Journal(path) as j:
        owners = j.path.with_name(j.path.name + ".owners")
    assert stat.S_IMODE(owners.stat().st_mode) == 0o700

    def files() -> set[str]:
        return {p.name for p in owners.iterdir()}

    def process(owner: str) -> str:
        return owner.rsplit(":", 1)[1].split(".")[0] + ".lock"

    assert files() == {process(a.owner), process(b.owner)}
    assert all(stat.S_IMODE((owners / f).stat().st_mode) == 0o600 for f in files())
    a.kill()
    b.kill()
    with Journal(path) as j:  # this process takes over a's post; b's still names b
        me = make_owner()
        taken = j.claim(owner=me, post_id=first)
        assert taken is not None
    c = claimed_by(path, third, claimers)  # a new process's first claim tidies up
    assert files() == {process(me), process(b.owner), process(c.owner)}
