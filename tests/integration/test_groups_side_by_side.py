"""A group's posts run side by side on the real clock: a silent platform holds back no other.

Two tus servers on 127.0.0.1: one honest, one that reads every PATCH and
never answers. The honest post is confirmed while the silent one is still
timing out; the journal's own timestamps say when.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest

from socket_drivers import MiB, no_proxies, quick  # noqa: F401 (autouse fixture)
from steadypost import AsyncUploader, Journal, PostGroup, PostState, RetryPolicy, Target, Uploader
from steadypost.testing.hostile import HostileServer, Silent

READ_S = 1.5


def confirmed_at(journal: Journal, post_id: str) -> float:
    [at] = [e.at for e in journal.events(post_id)
            if e.kind == "state" and e.data.get("to") == "confirmed"]  # fmt: skip
    return at.timestamp()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_silent_platform_does_not_delay_the_honest_one(kind: str, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "real-clock.sqlite3")
    data = hashlib.sha256(b"group").digest() * 10_000  # 320,000 bytes
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    options = {
        "journal": journal, "chunk_size": 100_000,
        "timeouts": quick(read=READ_S, min_rate=10 * MiB),
        "retry": RetryPolicy(base_s=0.2, cap_s=0.5, max_attempts=3),
    }  # fmt: skip
    with HostileServer("honest") as honest, \
            HostileServer("honest", wire=Silent(), wire_methods={"PATCH"}) as silent:  # fmt: skip
        targets = [Target(endpoint=silent.endpoint), Target(endpoint=honest.endpoint)]
        start = time.time()
        if kind == "sync":
            with Uploader(**options) as up:  # type: ignore[arg-type]
                group = up.post(path, platforms=targets)
        else:

            async def go() -> PostGroup:
                async with AsyncUploader(**options) as up:  # type: ignore[arg-type]
                    return await up.post(path, platforms=targets)

            group = asyncio.run(go())
        ended = time.time()
        stored = honest.stored()
    slow, fast = group.posts
    assert fast.state is PostState.CONFIRMED, fast.last_error
    assert stored == data
    assert fast.identity.sha256 == hashlib.sha256(data).hexdigest()
    assert slow.state is not PostState.UPLOADING
    assert slow.lease_owner is None
    assert ended - start >= READ_S  # the silent server held its own post at least one timeout
    assert confirmed_at(journal, fast.post_id) - start < READ_S  # ...and not the honest one
    journal.close()


def test_resume_pending_runs_each_sites_posts_side_by_side(tmp_path: Path) -> None:
    """Posts left by an earlier run (a crash, the daemon) go on one lane per site."""
    journal = Journal(tmp_path / "real-clock.sqlite3")
    data = hashlib.sha256(b"lanes").digest() * 10_000
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    seen: dict[str, int] = {}
    options = {
        "journal": journal, "chunk_size": 100_000,
        "timeouts": quick(read=READ_S, min_rate=10 * MiB),
        "retry": RetryPolicy(base_s=0.2, cap_s=0.5, max_attempts=3),
    }  # fmt: skip
    with HostileServer("honest") as honest, \
            HostileServer("honest", wire=Silent(), wire_methods={"PATCH"}) as silent, \
            Uploader(**options) as up:  # type: ignore[arg-type]  # fmt: skip
        slow = up.add(path, silent.endpoint)
        fast = up.add(path, honest.endpoint)
        start = time.time()
        done = up.resume_pending(on_progress=lambda p: seen.__setitem__(p.post_id, p.acknowledged))
        stored = honest.stored()
    assert [p.post_id for p in done] == [slow.post_id, fast.post_id]  # in the order they were due
    assert done[1].state is PostState.CONFIRMED
    assert stored == data
    assert confirmed_at(journal, fast.post_id) - start < READ_S
    assert seen[fast.post_id] == len(data)  # each progress report names its post
    journal.close()
