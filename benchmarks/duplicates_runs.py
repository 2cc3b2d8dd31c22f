"""The runs of ``benchmarks/duplicates.py``: steadypost's fleet and the naive client, counted
on the simulators' side (see that module's docstring for what each figure means).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from duplicates_platforms import TOKEN_PREFIX, PerPostPlatform, PlannedPost, Spec

from steadypost import Journal, Post, PostState, RetryPolicy, TokenRequest, Uploader
from steadypost.testing import FakeClock, PlatformSimulator

START = 1_800_000_000.0
HOUR = 3600.0
KiB = 1024
CHUNK_SIZE = 16 * KiB


@dataclass
class Result:
    platform: str
    name: str
    posts: int = 0
    duplicates: int = 0
    posts_with_duplicates: int = 0
    lost: int = 0
    resolved: int = 0
    unresolved: int = 0
    requests: int = 0
    hours: float = 0.0
    posting_hours: float = 0.0
    wall_s: float = 0.0
    wrong_bytes: int = 0
    """Published copies whose bytes differ from the file."""
    gave_up_but_live: int = 0
    """Posts the client gave up on (failed) that are live anyway: the user re-posts them."""
    confirmed_but_missing: int = 0
    unkeyed_copies: int = 0
    """steadypost on post-api only: copies published under another key than the post id."""
    unfired_rules: int = 0
    """Fault rules that never fired (expected for the naive client on some kinds)."""
    unrouted: int = 0
    """Requests no post's simulator could be found for (OPTIONS aside); must be 0."""
    rounds: int = 0
    clients: int = 0
    upload_runs: int = 0
    """steadypost: how many times a post was claimed to upload (each run of upload_post)."""
    checks: Counter[str] = field(default_factory=Counter)
    """steadypost: the verification checks made, by the platform's answer."""
    states: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def steadypost(self) -> bool:
        return self.name.startswith("steadypost")

    def count(self, kind: str, what: str, n: int = 1) -> None:
        self.by_kind.setdefault(kind, Counter())[what] += n

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["states"] = dict(self.states)
        data["checks"] = dict(self.checks)
        data["by_kind"] = {k: dict(v) for k, v in sorted(self.by_kind.items())}
        data["hours"] = round(self.hours, 3)
        data["posting_hours"] = round(self.posting_hours, 3)
        data["wall_s"] = round(self.wall_s, 1)
        return data


def _unfired(sim: PlatformSimulator) -> int:
    faults = sim.faults
    return sum(
        1 for rule in faults.rules if rule.times is not None and faults.fired(rule) < rule.times
    )


def tally(
    result: Result, plan: Sequence[PlannedPost], platform: PerPostPlatform, shas: Sequence[str],
    *, finished: Callable[[PlannedPost], tuple[bool, bool, bool]],
) -> None:  # fmt: skip
    """Count on the simulators' side. ``finished(p)`` -> (resolved, gave_up, says_done)."""
    result.posts = len(plan)
    result.requests = sum(len(sim.requests) for sim in platform.all_sims())
    result.unrouted = sum(1 for r in platform.front.requests if r.method != "OPTIONS")
    for p in plan:
        sim = platform.sims[p.post_id]
        copies = platform.spec.copies(sim)
        resolved, gave_up, says_done = finished(p)
        extra = max(0, len(copies) - 1)
        result.duplicates += extra
        result.posts_with_duplicates += extra > 0
        result.count(p.kind, "posts")
        result.count(p.kind, "duplicates", extra)
        result.wrong_bytes += sum(1 for sha in copies if sha != shas[p.file])
        unfired = _unfired(sim)
        result.unfired_rules += unfired
        result.count(p.kind, "unfired", unfired)
        if resolved:
            result.resolved += 1
        else:
            result.unresolved += 1
            result.count(p.kind, "unresolved")
        if not copies and (gave_up or says_done):
            result.lost += 1
            result.count(p.kind, "lost")
        if says_done and not copies:
            result.confirmed_but_missing += 1
        if gave_up and copies:
            result.gave_up_but_live += 1
            result.count(p.kind, "gave_up_but_live")


# --- steadypost ---------------------------------------------------------------------


def _token(request: TokenRequest) -> str:
    """Each post's adapter has ``account=<post id>``: its token names the post."""
    return TOKEN_PREFIX + request.account


def _uploaders(
    stack: contextlib.ExitStack, client: httpx.Client, journals: Path, count: int,
    clock: FakeClock, spec: Spec, args: argparse.Namespace,
) -> list[tuple[Journal, Uploader]]:  # fmt: skip
    """One creator's app each: its own journal (and so its own host guard) and Uploader."""
    retry = RetryPolicy(max_attempts=args.max_attempts, deadline_s=None)
    apps = []
    for i in range(count):
        journal = stack.enter_context(
            Journal(journals / f"creator-{i:05d}.sqlite3", clock=clock.now))
        uploader = stack.enter_context(Uploader(
            client=client, journal=journal, sleep=clock.sleep, clock=clock.now,
            rng=random.Random(args.seed * 1_000_003 + i), chunk_size=CHUNK_SIZE, retry=retry,
            token_provider=_token if spec.tokens else None,
        ))  # fmt: skip
        apps.append((journal, uploader))
    return apps


def run_steadypost(
    spec: Spec, name: str, plan: Sequence[PlannedPost], files: Sequence[Path],
    shas: Sequence[str], workdir: Path, args: argparse.Namespace, *, ignore_idempotency: bool,
) -> Result:  # fmt: skip
    result = Result(spec.name, name)
    label = f"{spec.name} {name}"
    started = time.perf_counter()
    clock = FakeClock(start=START)
    platform = PerPostPlatform(clock, spec, ignore_idempotency=ignore_idempotency)
    journals = workdir / f"journals-{spec.name}-{'nokeys' if ignore_idempotency else 'keys'}"
    journals.mkdir()
    per = args.posts_per_client
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client(transport=platform))
        apps = _uploaders(stack, client, journals, (len(plan) + per - 1) // per, clock, spec,
                          args)  # fmt: skip
        result.clients = len(apps)

        t0 = clock.now()
        for p in plan:
            platform.add(p.post_id, spec.rules(p))
            apps[p.index // per][1].post(  # new: each planned post is its own
                files[p.file], spec.endpoint, post_id=p.post_id, platform=spec.adapter(p.post_id),
                metadata={spec.caption_key: f"video {p.index}"}, new=True,
            )  # fmt: skip
            progress(label, "posted", p.index + 1, len(plan), started)
        result.posting_hours = (clock.now() - t0) / HOUR

        # Each creator's app polls like a daemon: it wakes at its journal's next due time,
        # but at most once per tick, and runs verify_due() then resume_pending().
        limit = t0 + args.max_hours * HOUR
        wakeups = [(due, i) for i, (journal, _) in enumerate(apps)
                   if (due := journal.next_due_at()) is not None]  # fmt: skip
        heapq.heapify(wakeups)
        while wakeups:
            due, i = heapq.heappop(wakeups)
            if due > limit:
                break
            clock.advance_to(due)
            journal, up = apps[i]
            up.verify_due()
            up.resume_pending()
            result.rounds += 1
            again = journal.next_due_at()
            if again is not None:
                heapq.heappush(wakeups, (max(again, clock.now() + args.tick), i))
            if result.rounds % 2000 == 0:
                progress(label, f"settling, {len(wakeups)} creators busy, clock "
                         f"+{(clock.now() - t0) / HOUR:.1f} h", 0, 0, started)  # fmt: skip

        posts: dict[str, Post] = {}
        evidence: dict[str, list[str]] = {}
        for journal, _ in apps:
            for post in journal.list():
                posts[post.post_id] = post
                events = journal.events(post.post_id)
                evidence[post.post_id] = [
                    str(e.data.get("status", "error")) for e in events if e.kind == "verify"
                ]
                result.upload_runs += sum(
                    1 for e in events if e.kind == "state" and e.data.get("to") == "uploading"
                )
        end = max((x.updated_ts for x in posts.values() if x.state.finished), default=t0)
        result.hours = (end - t0) / HOUR

    for post in posts.values():
        result.states[post.state.value] += 1

    def finished(p: PlannedPost) -> tuple[bool, bool, bool]:
        state = posts[p.post_id].state
        return state.finished, state is PostState.FAILED, state is PostState.CONFIRMED

    tally(result, plan, platform, shas, finished=finished)
    for p in plan:
        if not spec.tokens:  # the post-api convention: copies carry the idempotency key
            sim = platform.sims[p.post_id]
            result.unkeyed_copies += len(sim.published) - sim.published_copies(p.post_id)
        for status in evidence[p.post_id]:
            result.count(p.kind, f"check:{status}")
            result.checks[status] += 1
        if posts[p.post_id].state is PostState.FAILED:
            result.count(p.kind, "failed")
    result.wall_s = time.perf_counter() - started
    return result


# --- the naive client ---------------------------------------------------------------


def run_naive(
    spec: Spec, plan: Sequence[PlannedPost], files: Sequence[Path], shas: Sequence[str],
    args: argparse.Namespace,
) -> Result:  # fmt: skip
    name = f"naive ({args.naive_attempts} tries)"
    result = Result(spec.name, name)
    label = f"{spec.name} {name}"
    started = time.perf_counter()
    clock = FakeClock(start=START)
    platform = PerPostPlatform(clock, spec)
    contents = [f.read_bytes() for f in files]
    believed: dict[str, bool] = {}
    with httpx.Client(transport=platform) as client:
        naive = spec.naive(client, endpoint=spec.endpoint, attempts=args.naive_attempts,
                           clock=clock, chunk_size=CHUNK_SIZE)  # fmt: skip
        for p in plan:
            platform.pinned = platform.add(p.post_id, spec.rules(p))
            believed[p.post_id] = naive.post(files[p.file], contents[p.file], f"video {p.index}",
                                             token=TOKEN_PREFIX + p.post_id)  # fmt: skip
            progress(label, "posted", p.index + 1, len(plan), started)
    result.hours = (clock.now() - START) / HOUR
    result.states.update("posted" if ok else "gave up" for ok in believed.values())

    def finished(p: PlannedPost) -> tuple[bool, bool, bool]:
        ok = believed[p.post_id]
        return True, not ok, ok

    tally(result, plan, platform, shas, finished=finished)
    result.wall_s = time.perf_counter() - started
    return result


_last_progress = [0.0]


def progress(name: str, what: str, done: int, total: int, started: float) -> None:
    now = time.perf_counter()
    if total and done != total and now - _last_progress[0] < 10:
        return
    _last_progress[0] = now
    count = f" {done}/{total}" if total else ""
    print(f"  [{now - started:6.0f} s] {name}: {what}{count}", file=sys.stderr, flush=True)
