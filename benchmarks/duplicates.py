"""Duplicates under injected ambiguous failures, per platform: steadypost vs a naive client.

N posts go to each simulated platform (``steadypost.testing``, in process, no sockets)
while it fails ambiguously, with a seeded mix of faults per post. One row pair per
platform, side by side in one table: post-api (steadypost's own convention: tus, then
``POST /posts`` with an ``Idempotency-Key``), TikTok, Vimeo, YouTube, Instagram, X.

The faults per platform are the ambiguous failures that platform can really show: the
request that makes the video exist (a publish, a create, or the last chunk where the
last byte *is* the publish) is done but its answer is a 500 or never comes; beside them
the same answers *without* the work being done (``*_lost_500``: only a check can tell
them apart), checks and offset reads failing after a lost answer (``*_down``,
``final_patch_lost``: 1-3 failing HEADs, status, list or timeline reads), an upload or
publish refused as busy six times (``*_busy``: not ambiguous, to show what giving up
costs), an earlier step done but unanswered (``init_timeout`` / ``create_timeout`` /
``upload_timeout`` / ``finalize_timeout``: harmless, since that step posts nothing; a
client must neither count it as the post nor stop there), and slow processing:

==========  ===================================================  =========================
platform    kinds (default shares in ``duplicates_platforms``)     why these
==========  ===================================================  =========================
post-api    processed_500 (+_slow), processed_timeout, lost_500,  the publish is a separate
            slow, final_patch_lost, publish_busy, clean           keyed call
tiktok      last_chunk_500 (+_slow), last_chunk_timeout,          TikTok publishes once the
            last_chunk_lost_500, status_down, init_timeout,       last chunk lands: no
            slow, upload_busy, clean                              publish call exists
vimeo       final_patch_500 (+_slow), final_patch_lost,           the last tus PATCH makes
            patch_lost_500, check_down, create_timeout, slow,     the video; create only
            upload_busy, clean                                    reserves one
youtube     final_chunk_500 (+_slow), final_chunk_timeout,        the chunk that completes
            final_chunk_lost_500, list_down, init_timeout, slow,  the session is the video
            upload_busy, clean
instagram   publish_500, publish_timeout, publish_lost_500,       media_publish of a ready
            status_down, upload_timeout, slow, publish_busy,      container is the post
            clean
x           create_500, create_timeout, create_lost_500,          POST /2/tweets is the post;
            timeline_down, finalize_timeout, slow, create_busy,   media alone is not
            clean
==========  ===================================================  =========================

TikTok and YouTube take this benchmark's small files in one chunk (TikTok sends a file under
5 MB whole, YouTube's chunks are multiples of 256 KiB): their last chunk is their only one.
Vimeo's tus PATCHes and X's APPEND segments go in 16 KiB pieces. Slow processing lasts
20 min - 5 h (post-api, TikTok's moderation, Vimeo's transcoding, YouTube), 5 min - 1 h
(an Instagram container before it can be published), 1 - 20 min (X's media before it can
be posted). The simulated YouTube does not reject a second upload
of the same bytes as ``duplicate`` here: YouTube documents the reason, not that it catches
every re-upload, and counting on it would hide the naive client's copies
(``--youtube-rejects-duplicates`` shows the other case).

Every post has its own simulator, so a post's fault rules can only ever hit that post; one
in-process transport (``PerPostPlatform``) sits in front of them all and routes each
request to its post's simulator: by its token (each post's adapter has ``account=<post
id>`` and the uploader's token provider answers ``tok-<account>``), or a URL that simulator
handed out (upload links), or, for post-api, its key and upload URL. Per-token limits
(TikTok's 6 inits a minute) are then per post, not per creator. Within a run, every
simulator, journal and client share one ``FakeClock``; the runs share nothing and run in
parallel processes (``--jobs``).

Runs per platform, over the same plan (same seed: same kinds, files and rules per post):

* **steadypost**: ``Uploader.post(path, endpoint, platform=<the platform's adapter>)`` for
  every post, by a fleet of clients: ``--posts-per-client`` posts (default 10) per creator
  app, each with its own journal, ``Uploader`` and so its own per-host retry budget and
  circuit breaker. Then each client polls like a daemon: it wakes at its journal's next due
  time (at most once per ``--tick`` seconds) and calls ``verify_due()`` then
  ``resume_pending()``, until every post is ``confirmed`` or ``failed`` or ``--max-hours``
  of simulated time have passed.
* **steadypost, platform ignores keys** (post-api only): the same on simulators built with
  ``ignore_idempotency=True`` (every ``POST /posts`` publishes a new copy).
* **naive** (``naive_clients``): plain httpx, the platform's calls the simplest correct way,
  and on any error or timeout the whole post again at once (a new upload and publish), up
  to ``--naive-attempts`` tries; no journal, no verification, no waits but those the
  protocol asks for (polling a processing video) and those of the platform's own client
  (PyVimeo's tus retries). post-api keeps its old naive client: a tus client retrying each
  step, then one unkeyed publish. It is the default google-api-python-client
  (``num_retries=0``) re-run, not a script built on Google's sample, whose own retry loop
  probes the session and so survives a lost final answer within one process. The naive
  client posts one video after another, so its sim hours add up its polling waits.

Everything is counted on the simulators' side: copies of a post = the videos that are (or
will be, with no further request) live on its simulator. duplicates = copies beyond the
first, summed over posts; lost = posts with no copy that the client considers done or gave
up on; resolved = posts in a terminal state (steadypost: ``confirmed`` / ``failed``; naive:
every post, since it never checks later). requests = every request that reached a
simulator. sim hours = fake-clock time from the first post until the last reached its
terminal state (posting is sequential on the one clock, so a foreground wait for processing,
X's and Instagram's, moves every later post's start too).

The journals and the test videos (8 files of 4-64 KiB, sent in 16 KiB chunks where the
platform allows it) live in a temporary directory on /dev/shm when it exists. steadypost
retries with ``RetryPolicy(max_attempts=3)`` (``--max-attempts``), as the tests do. Exit
status 1 if steadypost duplicated, lost or left unresolved any post on any platform.

    python benchmarks/duplicates.py                       # every platform, 1000 posts each
    python benchmarks/duplicates.py --posts 2000 --platforms youtube,x
    python benchmarks/duplicates.py --posts 1000 --seed 7 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import duplicates_platforms as platforms
import httpx
from duplicates_platforms import SPECS, PerPostPlatform, Spec, make_plan
from duplicates_runs import CHUNK_SIZE, START, KiB, Result, run_naive, run_steadypost

from steadypost.testing import FakeClock

FILE_SIZES_KIB = (4, 8, 12, 16, 24, 32, 48, 64)
RUNS = ("steadypost", "nokeys", "naive")
DEFAULT_POSTS = 1000


def plan_for(spec: Spec, args: argparse.Namespace) -> list[platforms.PlannedPost]:
    # post-api keeps the seed's plan of old; the others get their own seeded plans.
    rng = random.Random(args.seed if spec.name == "post-api" else f"{args.seed}/{spec.name}")
    mix = args.mix.get(spec.name) or spec.default_mix()
    return make_plan(args.posts, rng, mix, spec.kinds, [k * KiB for k in FILE_SIZES_KIB],
                     CHUNK_SIZE, spec.slow_range)  # fmt: skip


def _run(platform: str, run: str, files: Sequence[Path], shas: Sequence[str], workdir: Path,
         args: argparse.Namespace) -> Result:  # fmt: skip
    platforms.YOUTUBE_OPTIONS["reject_duplicates"] = args.youtube_rejects_duplicates
    spec = SPECS[platform]
    plan = plan_for(spec, args)
    if run == "naive":
        return run_naive(spec, plan, files, shas, args)
    nokeys = run == "nokeys"
    name = "steadypost, platform ignores keys" if nokeys else "steadypost"
    return run_steadypost(spec, name, plan, files, shas, workdir, args, ignore_idempotency=nokeys)


# --- output -------------------------------------------------------------------------


def _short(name: str) -> str:
    return name.split(" (")[0].replace("platform ignores keys", "no keys")


def print_table(results: Sequence[Result], meta: dict[str, Any]) -> None:
    print(f"duplicates under injected ambiguous failures: {meta['posts']} posts per platform, "
          f"seed {meta['seed']}, wall {meta['wall_s']:.0f} s")  # fmt: skip
    print(f"journals and videos in {meta['workdir']} ({meta['workdir_note']})")
    print()
    head = ("platform", "client", "posts", "duplicates", "lost", "resolved", "requests",
            "sim hours", "wall s")  # fmt: skip
    rows = [
        (r.platform, r.name, r.posts, r.duplicates, r.lost, r.resolved, r.requests,
         f"{r.hours:.2f}", f"{r.wall_s:.0f}")
        for r in results
    ]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        cells = [str(v).ljust(w) for v, w in zip(row[:2], widths[:2], strict=True)]
        cells += [str(v).rjust(w) for v, w in zip(row[2:], widths[2:], strict=True)]
        print("  ".join(cells))
    print()
    for r in results:
        print(f"{r.platform} {_short(r.name)}: posts with a duplicate {r.posts_with_duplicates}, "
              f"gave up but live {r.gave_up_but_live}, unresolved {r.unresolved}, wrong bytes "
              f"{r.wrong_bytes}, unused fault rules {r.unfired_rules}, unrouted requests "
              f"{r.unrouted}, states {dict(r.states)}")  # fmt: skip
        if r.rounds:
            print(f"    {r.clients} clients; {r.rounds} polling rounds; {r.upload_runs} upload "
                  f"runs ({r.upload_runs / r.posts:.2f} per post); clock moved "
                  f"{r.posting_hours:.2f} h while posting; checks by answer {dict(r.checks)}"
                  + (f"; copies under another key {r.unkeyed_copies}"
                     if r.platform == "post-api" else ""))  # fmt: skip
    for platform in dict.fromkeys(r.platform for r in results):
        group = [r for r in results if r.platform == platform]
        print()
        print(f"{platform}: duplicates / lost, by kind".ljust(36)
              + "".join(f"{_short(r.name):>20}" for r in group))  # fmt: skip
        for kind in SPECS[platform].kinds:
            n = group[0].by_kind.get(kind, Counter())["posts"]
            if not n:
                continue
            line = f"  {kind} ({n})".ljust(36)
            for r in group:
                c = r.by_kind.get(kind, Counter())
                line += f"{c['duplicates']} / {c['lost']}".rjust(20)
            print(line)


def self_check() -> None:
    """Fail loudly unless the routing and the copy count work as this benchmark assumes.

    Two publishes of one upload under one key: one copy on a simulator that honours
    idempotency keys, two on one that ignores them; none reaches the front simulator.
    """
    tus = {"Tus-Resumable": "1.0.0"}
    endpoint = platforms.POST_API_ENDPOINT
    for ignore, want in ((False, 1), (True, 2)):
        platform = PerPostPlatform(FakeClock(start=START), SPECS["post-api"],
                                   ignore_idempotency=ignore)  # fmt: skip
        sim = platform.add("self-check", [])
        with httpx.Client(transport=platform) as client:
            meta = "post_id c2VsZi1jaGVjaw=="  # base64 of "self-check"
            created = client.post(endpoint, headers={**tus, "Upload-Length": "3",
                                                     "Upload-Metadata": meta})  # fmt: skip
            url = created.headers["location"]
            client.patch(url, content=b"abc", headers={
                **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            for _ in range(2):
                client.post(platforms.PUBLISH_URL, json={"upload_url": url},
                            headers={"Idempotency-Key": "self-check"})  # fmt: skip
        if len(sim.published) != want or platform.front.requests:
            raise SystemExit(f"self-check failed (ignore_idempotency={ignore}): "
                             f"{len(sim.published)} copies, want {want}")  # fmt: skip


# --- the command --------------------------------------------------------------------


def parse_mix(text: str) -> dict[str, dict[str, float]]:
    """``[platform.]kind=weight,...`` -> {platform: normalised mix} for the platforms named."""
    weights: dict[str, dict[str, float]] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        where, _, kind = name.strip().rpartition(".")
        matched = [s for s in SPECS.values() if kind in s.kinds and where in ("", s.name)]
        if not matched:
            known = {s.name: list(s.kinds) for s in SPECS.values()}
            raise argparse.ArgumentTypeError(f"unknown kind {name.strip()!r}; known: {known}")
        for spec in matched:
            weights.setdefault(spec.name, {})[kind] = float(weight)
    mixes = {}
    for platform, mix in weights.items():
        total = sum(mix.values())
        if total <= 0:
            raise argparse.ArgumentTypeError(f"{platform}: the weights must add up to more than 0")
        mixes[platform] = {k: v / total for k, v in mix.items() if v > 0}
    return mixes


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = p.add_argument
    add("--posts", type=int, default=DEFAULT_POSTS,
        help=f"posts per platform and run (default {DEFAULT_POSTS})")
    add("--platforms", default=",".join(SPECS),
        help=f"which platforms, comma-separated (default: all: {','.join(SPECS)})")
    add("--seed", type=int, default=1)
    add("--json", action="store_true", help="print the results as JSON")
    add("--mix", type=parse_mix, default={},
        help="[platform.]kind=weight,... (a kind without platform: every platform that has "
        "it; a platform named keeps only the kinds given); defaults in duplicates_platforms")
    add("--tick", type=float, default=60.0,
        help="seconds between polling rounds at least (default 60)")
    add("--max-hours", type=float, default=200.0,
        help="simulated hours to settle every post (default 200)")
    add("--max-attempts", type=int, default=3,
        help="steadypost RetryPolicy.max_attempts (default 3, as in the tests)")
    add("--posts-per-client", type=int, default=10,
        help="posts per steadypost client (one journal, Uploader and host guard each; "
        "default 10: a creator's app, not one process for all)")
    add("--naive-attempts", type=int, default=5)
    add("--runs", default=",".join(RUNS),
        help=f"which runs (default {','.join(RUNS)}; nokeys exists for post-api only)")
    add("--youtube-rejects-duplicates", action="store_true",
        help="let the simulated YouTube reject a re-upload of the same bytes as 'duplicate'")
    add("--jobs", type=int, default=os.cpu_count() or 1,
        help="run the runs in this many processes (default: CPUs)")
    add("--keep", action="store_true", help="keep the temporary directory")
    return p  # fmt: skip


def to_json(results: Sequence[Result], meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"posts": meta["posts"]}
    by = {(r.platform, _short(r.name)): r for r in results}
    if sp := by.get(("post-api", "steadypost")):  # the figures of old, for post-api
        out.update(duplicates=sp.duplicates, lost=sp.lost, resolved=sp.resolved,
                   requests=sp.requests, hours_to_resolve=round(sp.hours, 3))  # fmt: skip
    if nv := by.get(("post-api", "naive")):
        out.update(naive_duplicates=nv.duplicates, naive_lost=nv.lost,
                   naive_requests=nv.requests)  # fmt: skip
    if nk := by.get(("post-api", "steadypost, no keys")):
        out.update(ignore_idempotency_duplicates=nk.duplicates,
                   ignore_idempotency_lost=nk.lost, ignore_idempotency_resolved=nk.resolved,
                   ignore_idempotency_requests=nk.requests)  # fmt: skip
    out["by_platform"] = {
        platform: {_short(r.name): {k: getattr(r, k) for k in (
            "posts", "duplicates", "lost", "resolved", "unresolved", "requests")}
            | {"hours": round(r.hours, 3)} for r in results if r.platform == platform}
        for platform in dict.fromkeys(r.platform for r in results)
    }  # fmt: skip
    out.update(meta)
    out["runs"] = [r.as_dict() for r in results]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.posts < 1 or args.posts_per_client < 1:
        parser().error("--posts and --posts-per-client must be at least 1")
    chosen = [p.strip() for p in args.platforms.split(",") if p.strip()]
    runs = {r.strip() for r in args.runs.split(",")}
    if not chosen or not set(chosen) <= set(SPECS):
        parser().error(f"--platforms: choose from {','.join(SPECS)}")
    if not runs <= set(RUNS):
        parser().error(f"--runs: choose from {','.join(RUNS)}")

    # Retries are logged as warnings; thousands of them are not this benchmark's output.
    logging.getLogger("steadypost").addHandler(logging.NullHandler())
    logging.getLogger("steadypost").propagate = False

    self_check()
    started = time.perf_counter()
    workdir, note = make_workdir()
    try:
        files, shas = make_files(workdir, args.seed)
        todo = [(platform, run, files, shas, workdir, args) for platform in chosen
                for run in RUNS if run in runs and (run != "nokeys" or platform == "post-api")]
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
            "workdir": str(workdir), "workdir_note": note, "platforms": chosen,
            "mix": {p: args.mix.get(p) or SPECS[p].default_mix() for p in chosen},
            "chunk_size": CHUNK_SIZE, "file_sizes_kib": list(FILE_SIZES_KIB),
            "max_attempts": args.max_attempts, "tick_s": args.tick,
            "posts_per_client": args.posts_per_client,
            "youtube_rejects_duplicates": args.youtube_rejects_duplicates}  # fmt: skip
    if args.json:
        out = to_json(results, meta)
        print(json.dumps(out, indent=2))
    else:
        print_table(results, meta)
    ok = all(r.duplicates == 0 and r.lost == 0 and r.unresolved == 0
             for r in results if r.steadypost)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
