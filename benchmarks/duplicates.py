"""Duplicates under injected ambiguous failures: steadypost vs a naive tus + publish client.

N posts go to the simulated platform (``steadypost.testing``, in process, no sockets) while
it fails ambiguously, with a seeded mix of faults per post:

=====================  ===================================================================
kind                   what the platform does
=====================  ===================================================================
processed_500          publishes, then answers 500                 (ProcessedButError)
processed_500_slow     the same, and the video processes for 20 min - 5 h
processed_timeout      publishes, then never answers               (ProcessedButTimeout)
lost_500               answers 500 *without* publishing            (Respond 500, once)
slow                   accepts; the video processes for 20 min - 5 h (SlowProcessing)
final_patch_lost       stores the last tus PATCH but never answers, then the next 1-3 HEADs
                       answer 503                                  (ProcessedButTimeout + Respond)
publish_busy           answers 503 (not processed) to the next 6 publish requests
clean                  behaves
=====================  ===================================================================

Every post has its own simulator, so a post's fault rules can only ever hit that post;
one in-process transport (``PerPostPlatform``) sits in front of them all under a single
host and routes each request to its post's simulator (by the tus ``post_id`` metadata, the
upload URL, the ``Idempotency-Key`` or the status URL). Within a run, every simulator,
journal and client share one ``FakeClock``; the three runs share nothing and run in
parallel processes (``--jobs``).

Three runs over the same plan (same seed: same kinds, files and rules per post):

* **steadypost**: ``Uploader.post(..., platform=PostApiPlatform(...))`` for every post, by
  a fleet of clients: ``--posts-per-client`` posts (default 10) per creator app, each with
  its own journal, ``Uploader`` and so its own per-host retry budget and circuit breaker
  (``steadypost.hosts``), as 10,000 posts come from many creators, not one process. Then
  each client polls like a daemon: it wakes at its journal's next due time (at most once
  per ``--tick`` seconds) and calls ``verify_due()`` then ``resume_pending()``, until every
  post is ``confirmed`` or ``failed`` or ``--max-hours`` of simulated time have passed.
  ``--posts-per-client N`` puts every post in one process (see the report on the retry
  budget: the work then grows with the square of the backlog).
* **steadypost, platform ignores keys**: the same on simulators built with
  ``ignore_idempotency=True`` (every ``POST /posts`` publishes a new copy).
* **naive**: what a common tus client plus one publish call does, with plain httpx: create,
  PATCH the chunks (after an error: HEAD for the offset, then go on), then ``POST /posts``
  with no idempotency key; any error (5xx, timeout, reset) is retried at once, up to
  ``--naive-attempts`` attempts per step, then it gives up.

Everything is counted on the simulators' side: copies of a post = ``len(sim.published)``
(live or still processing). duplicates = copies beyond the first, summed over posts; lost =
posts with no copy that the client considers done or gave up on; resolved = posts in a
terminal state (steadypost: ``confirmed`` / ``failed``; naive: every post, since it never
waits). requests = every request that reached a simulator. sim hours = fake-clock time from
the first post until the last post reached its terminal state.

The journals and the test videos (8 files of 4-64 KiB, sent in 16 KiB chunks) live in a
temporary directory on /dev/shm when it exists (tmpfs: the journals' many fsyncs cost
nothing there); the output says where. steadypost retries with
``RetryPolicy(max_attempts=3)`` (``--max-attempts``), as the tests do: a client's backoff
sleeps move the shared fake clock. Exit status 1 if steadypost duplicated, lost or left
unresolved any post.

    python benchmarks/duplicates.py --posts 1000
    python benchmarks/duplicates.py --posts 10000 --seed 7 --json
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import heapq
import json
import logging
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from steadypost import Journal, Post, PostState, RetryPolicy, Uploader
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.tus.adapters import PostApiPlatform
from steadypost.testing import (
    FakeClock,
    Fault,
    PlatformSimulator,
    ProcessedButError,
    ProcessedButTimeout,
    Respond,
    SimTransport,
    SlowProcessing,
)

BASE = "https://platform.test"
ENDPOINT = f"{BASE}/files/"
PUBLISH_URL = f"{BASE}/posts"
STATUS_URL = f"{BASE}/posts/{{post_id}}/status"
START = 1_800_000_000.0
KiB = 1024
MIN, HOUR = 60.0, 3600.0
CHUNK_SIZE = 16 * KiB
FILE_SIZES_KIB = (4, 8, 12, 16, 24, 32, 48, 64)
SLOW_RANGE_S = (20 * MIN, 5 * HOUR)
BUSY_PUBLISH_ANSWERS = 6

#: kind -> share of the posts (normalised); see the module docstring.
DEFAULT_MIX: dict[str, float] = {
    "processed_500": 0.17,
    "processed_500_slow": 0.05,
    "processed_timeout": 0.17,
    "lost_500": 0.13,
    "slow": 0.13,
    "final_patch_lost": 0.10,
    "publish_busy": 0.05,
    "clean": 0.20,
}

# --- the plan: one seeded fault scenario per post -------------------------------------


@dataclass(frozen=True)
class PlannedPost:
    index: int
    post_id: str
    kind: str
    file: int
    slow_s: float = 0.0
    head_failures: int = 0

    def rules(self) -> list[Fault]:
        """This post's fault rules (each used up by this post's own requests)."""
        kind = self.kind
        rules: list[Fault] = []
        if kind in ("processed_500", "processed_500_slow"):
            rules.append(ProcessedButError(status=500, on={"publish"}, times=1))
        elif kind == "processed_timeout":
            rules.append(ProcessedButTimeout(on={"publish"}, times=1))
        elif kind == "lost_500":
            rules.append(Respond(status=500, path="/posts", methods={"POST"}, times=1))
        elif kind == "final_patch_lost":
            rules.append(ProcessedButTimeout(on={"final_patch"}, times=1))
            rules.append(Respond(status=503, methods={"HEAD"}, times=self.head_failures))
        elif kind == "publish_busy":
            rules.append(
                Respond(status=503, path="/posts", methods={"POST"}, times=BUSY_PUBLISH_ANSWERS)
            )
        if self.slow_s:
            rules.append(SlowProcessing(seconds=self.slow_s, times=1))
        return rules


def make_plan(n: int, seed: int, mix: dict[str, float], sizes: Sequence[int]) -> list[PlannedPost]:
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    multi_chunk = [i for i, size in enumerate(sizes) if size > CHUNK_SIZE]
    plan = []
    for index in range(n):
        kind = rng.choices(kinds, weights)[0]
        # The lost final PATCH needs a file of more than one chunk (a one-chunk file
        # travels whole on the creation request).
        file = rng.choice(multi_chunk) if kind == "final_patch_lost" else rng.randrange(len(sizes))
        slow = rng.uniform(*SLOW_RANGE_S) if kind in ("slow", "processed_500_slow") else 0.0
        heads = rng.randint(1, 3) if kind == "final_patch_lost" else 0
        post_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        plan.append(PlannedPost(index, post_id, kind, file, slow, heads))
    return plan


# --- one host in front of one simulator per post -----------------------------------


def _metadata_value(header: str | None, key: str) -> str | None:
    for pair in (header or "").split(","):
        name, _, value = pair.strip().partition(" ")
        if name == key:
            return base64.b64decode(value).decode() if value else ""
    return None


class PerPostPlatform(httpx.BaseTransport):
    """An httpx transport: one platform host, one :class:`PlatformSimulator` per post.

    Requests go to their post's simulator: tus creation by its ``post_id`` metadata,
    upload URLs by the upload id learned from the creation answer, ``POST /posts`` by its
    ``Idempotency-Key`` (else by the ``upload_url`` in its body), status by the id in the
    path. With ``pinned`` set, everything goes to that simulator (the naive client, which
    finishes one post before the next). ``OPTIONS`` and anything unknown go to ``front``.
    """

    def __init__(self, clock: FakeClock, *, ignore_idempotency: bool = False) -> None:
        self.clock = clock
        self.ignore_idempotency = ignore_idempotency
        self.front = PlatformSimulator(clock=clock)
        self.sims: dict[str, PlatformSimulator] = {}
        self.pinned: PlatformSimulator | None = None
        self._by_upload: dict[str, PlatformSimulator] = {}
        self._transports: dict[int, SimTransport] = {}

    def add(self, post_id: str, rules: list[Fault]) -> PlatformSimulator:
        sim = PlatformSimulator(
            clock=self.clock, faults=rules, ignore_idempotency=self.ignore_idempotency
        )
        self.sims[post_id] = sim
        self._transports[id(sim)] = sim.transport()
        return sim

    def all_sims(self) -> Iterator[PlatformSimulator]:
        yield self.front
        yield from self.sims.values()

    def _route(self, request: httpx.Request) -> PlatformSimulator:
        if self.pinned is not None:
            return self.pinned
        path = request.url.path
        if path.startswith("/files/") and path.strip("/") != "files":
            return self._by_upload.get(path[len("/files/") :].strip("/"), self.front)
        if path.rstrip("/") == "/files" and request.method == "POST":
            post_id = _metadata_value(request.headers.get("upload-metadata"), "post_id")
            return self.sims.get(post_id or "", self.front)
        if path.startswith("/posts/"):
            return self.sims.get(path.split("/")[2], self.front)
        if path.rstrip("/") == "/posts":
            key = request.headers.get("idempotency-key")
            if key is not None:
                return self.sims.get(key, self.front)
            with contextlib.suppress(ValueError, AttributeError):
                upload_url = json.loads(request.read())["upload_url"]
                return self._by_upload.get(httpx.URL(upload_url).path.split("/")[-1], self.front)
        return self.front

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sim = self._route(request)
        transport = self._transports.get(id(sim))
        if transport is None:
            transport = self._transports[id(sim)] = sim.transport()
        response = transport.handle_request(request)
        if request.method == "POST" and response.status_code == 201:
            location = response.headers.get("location")
            if location:
                self._by_upload[httpx.URL(location).path.rstrip("/").split("/")[-1]] = sim
        return response


# --- results ------------------------------------------------------------------------


@dataclass
class Result:
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
    """steadypost only: copies published under another key than the post id (must be 0)."""
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
    result: Result,
    plan: Sequence[PlannedPost],
    platform: PerPostPlatform,
    shas: Sequence[str],
    *,
    finished: Callable[[PlannedPost], tuple[bool, bool, bool]],
) -> None:
    """Count on the simulators' side. ``finished(p)`` -> (resolved, gave_up, says_done)."""
    result.posts = len(plan)
    result.requests = sum(len(sim.requests) for sim in platform.all_sims())
    result.unrouted = sum(1 for r in platform.front.requests if r.method != "OPTIONS")
    for p in plan:
        sim = platform.sims[p.post_id]
        copies = sim.published
        resolved, gave_up, says_done = finished(p)
        extra = max(0, len(copies) - 1)
        result.duplicates += extra
        result.posts_with_duplicates += extra > 0
        result.count(p.kind, "posts")
        result.count(p.kind, "duplicates", extra)
        result.wrong_bytes += sum(1 for c in copies if c.sha256 != shas[p.file])
        result.unfired_rules += _unfired(sim)
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


@dataclass
class Creator:
    """One creator's app: its own journal (and so its own host guard) and Uploader."""

    journal: Journal
    uploader: Uploader


def run_steadypost(
    name: str,
    plan: Sequence[PlannedPost],
    files: Sequence[Path],
    shas: Sequence[str],
    workdir: Path,
    args: argparse.Namespace,
    *,
    ignore_idempotency: bool,
) -> Result:
    result = Result(name)
    started = time.perf_counter()
    clock = FakeClock(start=START)
    platform = PerPostPlatform(clock, ignore_idempotency=ignore_idempotency)
    api = PostApiPlatform(HeaderPolicy(), publish_url=PUBLISH_URL, status_url=STATUS_URL)
    journals = workdir / f"journals-{'nokeys' if ignore_idempotency else 'keys'}"
    journals.mkdir()
    retry = RetryPolicy(max_attempts=args.max_attempts, deadline_s=None)
    per = args.posts_per_client
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client(transport=platform, base_url=BASE))
        creators: list[Creator] = []
        for i in range((len(plan) + per - 1) // per):
            journal = stack.enter_context(
                Journal(journals / f"creator-{i:05d}.sqlite3", clock=clock.now)
            )
            uploader = stack.enter_context(Uploader(
                client=client, journal=journal, sleep=clock.sleep, clock=clock.now,
                rng=random.Random(args.seed * 1_000_003 + i), chunk_size=CHUNK_SIZE, retry=retry,
            ))  # fmt: skip
            creators.append(Creator(journal, uploader))
        result.clients = len(creators)

        t0 = clock.now()
        for p in plan:
            platform.add(p.post_id, p.rules())
            creators[p.index // per].uploader.post(  # new: each planned post is its own
                files[p.file], ENDPOINT, post_id=p.post_id, platform=api,
                metadata={"caption": f"video {p.index}"}, new=True,
            )  # fmt: skip
            progress(name, "posted", p.index + 1, len(plan), started)
        result.posting_hours = (clock.now() - t0) / HOUR

        # Each creator's app polls like a daemon: it wakes at its journal's next due time,
        # but at most once per tick, and runs verify_due() then resume_pending().
        limit = t0 + args.max_hours * HOUR
        wakeups = [(due, i) for i, c in enumerate(creators)
                   if (due := c.journal.next_due_at()) is not None]  # fmt: skip
        heapq.heapify(wakeups)
        while wakeups:
            due, i = heapq.heappop(wakeups)
            if due > limit:
                break
            clock.advance_to(due)
            up = creators[i].uploader
            up.verify_due()
            up.resume_pending()
            result.rounds += 1
            again = creators[i].journal.next_due_at()
            if again is not None:
                heapq.heappush(wakeups, (max(again, clock.now() + args.tick), i))
            if result.rounds % 2000 == 0:
                progress(name, f"settling, {len(wakeups)} creators busy, clock "
                         f"+{(clock.now() - t0) / HOUR:.1f} h", 0, 0, started)  # fmt: skip

        posts: dict[str, Post] = {}
        evidence: dict[str, list[str]] = {}
        for c in creators:
            for post in c.journal.list():
                posts[post.post_id] = post
                events = c.journal.events(post.post_id)
                evidence[post.post_id] = [
                    str(e.data.get("status", "error")) for e in events if e.kind == "verify"
                ]
                result.upload_runs += sum(
                    1 for e in events if e.kind == "state" and e.data.get("to") == "uploading"
                )
        end = max((x.updated_at for x in posts.values() if x.state.finished), default=t0)
        result.hours = (end - t0) / HOUR

    for post in posts.values():
        result.states[post.state.value] += 1

    def finished(p: PlannedPost) -> tuple[bool, bool, bool]:
        state = posts[p.post_id].state
        return state.finished, state is PostState.FAILED, state is PostState.CONFIRMED

    tally(result, plan, platform, shas, finished=finished)
    for p in plan:
        sim = platform.sims[p.post_id]
        result.unkeyed_copies += len(sim.published) - sim.published_copies(p.post_id)
        for status in evidence[p.post_id]:
            result.count(p.kind, f"check:{status}")
            result.checks[status] += 1
    result.wall_s = time.perf_counter() - started
    return result


# --- the naive client ---------------------------------------------------------------


class NaiveClient:
    """A common tus client plus one publish call: no journal, no key, instant retries."""

    TUS: ClassVar[dict[str, str]] = {"Tus-Resumable": "1.0.0"}

    def __init__(self, client: httpx.Client, *, attempts: int, chunk_size: int) -> None:
        self.client = client
        self.attempts = attempts
        self.chunk_size = chunk_size

    def _retry(self, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        """Send; on a 5xx or a transport error send again at once; ``None``: gave up."""
        for _ in range(self.attempts):
            try:
                response = send()
            except httpx.TransportError:
                continue
            if response.status_code < 500:
                return response
        return None

    def post(self, path: Path, data: bytes, caption: str) -> bool:
        """Upload then publish; ``True`` if it believes the video was posted."""
        name = base64.b64encode(path.name.encode()).decode()
        created = self._retry(
            lambda: self.client.post(
                ENDPOINT,
                headers={
                    **self.TUS,
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": f"filename {name}",
                },
            )
        )
        if created is None or created.status_code != 201:
            return False
        url = str(httpx.URL(ENDPOINT).join(created.headers["location"]))
        offset = 0
        while offset < len(data):
            new = self._send_chunk(url, data, offset)
            if new is None:
                return False
            offset = new
        published = self._retry(
            lambda: self.client.post(
                PUBLISH_URL, json={"upload_url": url, "metadata": {"caption": caption}}
            )
        )
        return published is not None and published.status_code < 300

    def _send_chunk(self, url: str, data: bytes, offset: int) -> int | None:
        """PATCH one chunk; after a failure, HEAD for the offset first (as tus-js-client does)."""
        for attempt in range(self.attempts):
            try:
                if attempt:
                    head = self.client.head(url, headers=self.TUS)
                    if head.status_code >= 500:
                        continue
                    if head.status_code != 200:
                        return None
                    offset = int(head.headers["upload-offset"])
                    if offset >= len(data):
                        return offset
                answer = self.client.patch(
                    url,
                    content=data[offset : offset + self.chunk_size],
                    headers={
                        **self.TUS,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
            except httpx.TransportError:
                continue
            if answer.status_code >= 500:
                continue
            if answer.status_code != 204:
                return None
            return int(answer.headers["upload-offset"])
        return None


def run_naive(
    plan: Sequence[PlannedPost], files: Sequence[Path], shas: Sequence[str],
    args: argparse.Namespace,
) -> Result:  # fmt: skip
    name = f"naive ({args.naive_attempts} instant tries, no key)"
    result = Result(name)
    started = time.perf_counter()
    clock = FakeClock(start=START)
    platform = PerPostPlatform(clock)
    contents = [f.read_bytes() for f in files]
    believed: dict[str, bool] = {}
    with httpx.Client(transport=platform, base_url=BASE) as client:
        naive = NaiveClient(client, attempts=args.naive_attempts, chunk_size=CHUNK_SIZE)
        for p in plan:
            platform.pinned = platform.add(p.post_id, p.rules())
            believed[p.post_id] = naive.post(files[p.file], contents[p.file], f"video {p.index}")
            progress(name, "posted", p.index + 1, len(plan), started)
    result.hours = (clock.now() - START) / HOUR
    result.states.update("posted" if ok else "gave up" for ok in believed.values())

    def finished(p: PlannedPost) -> tuple[bool, bool, bool]:
        ok = believed[p.post_id]
        return True, not ok, ok

    tally(result, plan, platform, shas, finished=finished)
    result.wall_s = time.perf_counter() - started
    return result


# --- output -------------------------------------------------------------------------

_last_progress = [0.0]


def progress(name: str, what: str, done: int, total: int, started: float) -> None:
    now = time.perf_counter()
    if total and done != total and now - _last_progress[0] < 10:
        return
    _last_progress[0] = now
    count = f" {done}/{total}" if total else ""
    print(f"  [{now - started:6.0f} s] {name}: {what}{count}", file=sys.stderr, flush=True)


def print_table(results: Sequence[Result], meta: dict[str, Any]) -> None:
    print(f"duplicates under injected ambiguous failures: {meta['posts']} posts, "
          f"seed {meta['seed']}, wall {meta['wall_s']:.0f} s")  # fmt: skip
    print(f"journal and videos in {meta['workdir']} ({meta['workdir_note']})")
    print("mix: " + ", ".join(f"{k} {v:.0%}" for k, v in meta["mix"].items()))
    print()
    head = ("client", "posts", "duplicates", "lost", "resolved", "requests", "sim hours", "wall s")
    rows = [
        (r.name, r.posts, r.duplicates, r.lost, r.resolved, r.requests,
         f"{r.hours:.2f}", f"{r.wall_s:.0f}")
        for r in results
    ]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(v).rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
    print()
    for r in results:
        print(f"{r.name}: posts with a duplicate {r.posts_with_duplicates}, "
              f"gave up but live {r.gave_up_but_live}, unresolved {r.unresolved}, "
              f"copies with wrong bytes {r.wrong_bytes}, states {dict(r.states)}")  # fmt: skip
        print(f"    unused fault rules {r.unfired_rules}, unrouted requests {r.unrouted}"
              + (f", copies under another key {r.unkeyed_copies}"
                 if r.name.startswith("steadypost") else ""))  # fmt: skip
        if r.rounds:
            print(f"    {r.clients} clients x {meta['posts_per_client']} posts; {r.rounds} polling "
                  f"rounds; {r.upload_runs} upload runs ({r.upload_runs / r.posts:.2f} per post); "
                  f"clock moved {r.posting_hours:.2f} h while posting")  # fmt: skip
            print(f"    status checks by answer {dict(r.checks)}; re-posted after 'not found': "
                  + ", ".join(f"{k} {c['check:not_found']}" for k, c in sorted(r.by_kind.items())
                              if c["check:not_found"]))  # fmt: skip
    print()
    kinds = list(meta["mix"])
    short = [r.name.split(" (")[0].replace("platform ignores keys", "no keys") for r in results]
    print("duplicates / lost, by kind".ljust(30) + "".join(f"{n:>22}" for n in short))
    for kind in kinds:
        n = results[0].by_kind.get(kind, Counter())["posts"]
        line = f"  {kind} ({n})".ljust(30)
        for r in results:
            c = r.by_kind.get(kind, Counter())
            line += f"{c['duplicates']} / {c['lost']}".rjust(22)
        print(line)


RUNS = ("steadypost", "nokeys", "naive")


def self_check() -> None:
    """Fail loudly unless the routing and the copy count work as this benchmark assumes.

    Two publishes of one upload under one key: one copy on a simulator that honours
    idempotency keys, two on one that ignores them.
    """
    tus = {"Tus-Resumable": "1.0.0"}
    for ignore, want in ((False, 1), (True, 2)):
        platform = PerPostPlatform(FakeClock(start=START), ignore_idempotency=ignore)
        sim = platform.add("self-check", [])
        with httpx.Client(transport=platform, base_url=BASE) as client:
            meta = "post_id " + base64.b64encode(b"self-check").decode()
            created = client.post(ENDPOINT, headers={**tus, "Upload-Length": "3",
                                                     "Upload-Metadata": meta})  # fmt: skip
            url = created.headers["location"]
            client.patch(
                url,
                content=b"abc",
                headers={
                    **tus,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            for _ in range(2):
                client.post(PUBLISH_URL, json={"upload_url": url},
                            headers={"Idempotency-Key": "self-check"})  # fmt: skip
        if len(sim.published) != want or platform.front.requests:
            raise SystemExit(f"self-check failed (ignore_idempotency={ignore}): "
                             f"{len(sim.published)} copies, want {want}")  # fmt: skip


def _run(
    run: str, plan: Sequence[PlannedPost], files: Sequence[Path], shas: Sequence[str],
    workdir: Path, args: argparse.Namespace,
) -> Result:  # fmt: skip
    if run == "naive":
        return run_naive(plan, files, shas, args)
    nokeys = run == "nokeys"
    name = "steadypost, platform ignores keys" if nokeys else "steadypost"
    return run_steadypost(name, plan, files, shas, workdir, args, ignore_idempotency=nokeys)


def parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in DEFAULT_MIX:
            raise argparse.ArgumentTypeError(f"unknown kind {kind!r}; known: {list(DEFAULT_MIX)}")
        mix[kind.strip()] = float(weight)
    total = sum(mix.values())
    if total <= 0:
        raise argparse.ArgumentTypeError("the weights must add up to more than 0")
    return {k: v / total for k, v in mix.items() if v > 0}


def make_workdir() -> tuple[Path, str]:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="steadypost-dup-", dir=shm)), "tmpfs: fsync is cheap"
    return Path(tempfile.mkdtemp(prefix="steadypost-dup-")), "no /dev/shm: real fsyncs, slower"


def make_files(workdir: Path, seed: int) -> tuple[list[Path], list[str]]:
    rng = random.Random(seed)
    files, shas = [], []
    for i, kib in enumerate(FILE_SIZES_KIB):
        data = rng.randbytes(kib * KiB)
        path = workdir / f"video-{i}-{kib}k.mp4"
        path.write_bytes(data)
        files.append(path)
        shas.append(hashlib.sha256(data).hexdigest())
    return files, shas


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000, help="posts per run (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=None,
        help="kind=weight,... (default: "
        + ",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items())
        + ")",
    )
    parser.add_argument(
        "--tick",
        type=float,
        default=60.0,
        help="seconds between polling rounds at least (default 60)",
    )
    parser.add_argument(
        "--max-hours",
        type=float,
        default=200.0,
        help="simulated hours to settle every post (default 200)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        help="steadypost RetryPolicy.max_attempts (default 3, as in the tests)",
    )
    parser.add_argument(
        "--posts-per-client",
        type=int,
        default=10,
        help="posts per steadypost client (one journal, Uploader and host "
        "guard each; default 10: a creator's app, not one process for all)",
    )
    parser.add_argument("--naive-attempts", type=int, default=5)
    parser.add_argument(
        "--runs",
        default="steadypost,nokeys,naive",
        help="which runs (default steadypost,nokeys,naive)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(len(RUNS), os.cpu_count() or 1),
        help="run the three runs in this many processes (default: CPUs, max 3)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.posts < 1 or args.posts_per_client < 1:
        parser.error("--posts and --posts-per-client must be at least 1")
    mix = args.mix or {k: v / sum(DEFAULT_MIX.values()) for k, v in DEFAULT_MIX.items()}
    runs = {r.strip() for r in args.runs.split(",")}
    if not runs <= set(RUNS):
        parser.error(f"--runs: choose from {','.join(RUNS)}")

    # Retries are logged as warnings; thousands of them are not this benchmark's output.
    logging.getLogger("steadypost").addHandler(logging.NullHandler())
    logging.getLogger("steadypost").propagate = False

    self_check()
    started = time.perf_counter()
    workdir, note = make_workdir()
    try:
        files, shas = make_files(workdir, args.seed)
        plan = make_plan(args.posts, args.seed, mix, [k * KiB for k in FILE_SIZES_KIB])
        order = [r for r in RUNS if r in runs]
        todo = [(r, plan, files, shas, workdir, args) for r in order]
        if args.jobs > 1 and len(todo) > 1:
            # The runs share nothing (own clock, simulators and journals): one process each.
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(args.jobs, len(todo)), mp_context=context) as pool:
                results = list(pool.map(_run, *zip(*todo, strict=True)))
        else:
            results = [_run(*job) for job in todo]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    meta = {"posts": args.posts, "seed": args.seed, "wall_s": time.perf_counter() - started,
            "workdir": str(workdir), "workdir_note": note, "mix": mix,
            "chunk_size": CHUNK_SIZE, "file_sizes_kib": list(FILE_SIZES_KIB),
            "max_attempts": args.max_attempts, "tick_s": args.tick,
            "posts_per_client": args.posts_per_client}  # fmt: skip
    if args.json:
        by = {r.name.split(" ")[0].rstrip(","): r for r in results}
        sp = next((r for r in results if r.name == "steadypost"), None)
        nk = next((r for r in results if "ignores keys" in r.name), None)
        nv = by.get("naive")
        out: dict[str, Any] = {"posts": args.posts}
        if sp:
            out.update(duplicates=sp.duplicates, lost=sp.lost, resolved=sp.resolved,
                       requests=sp.requests, hours_to_resolve=round(sp.hours, 3))  # fmt: skip
        if nv:
            out.update(naive_duplicates=nv.duplicates, naive_lost=nv.lost,
                       naive_requests=nv.requests)  # fmt: skip
        if nk:
            out.update(ignore_idempotency_duplicates=nk.duplicates,
                       ignore_idempotency_lost=nk.lost, ignore_idempotency_resolved=nk.resolved,
                       ignore_idempotency_requests=nk.requests)  # fmt: skip
        out.update(meta)
        out["runs"] = [r.as_dict() for r in results]
        print(json.dumps(out, indent=2))
    else:
        print_table(results, meta)
    ok = all(r.duplicates == 0 and r.lost == 0 and r.unresolved == 0
             for r in results if r.name.startswith("steadypost"))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
