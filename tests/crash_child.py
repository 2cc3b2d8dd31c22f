"""A steadypost run to be killed: the child process of tests/test_crash.py and benchmarks/crash.py.

    python tests/crash_child.py [options] JOURNAL ENDPOINT post FILE...
    python tests/crash_child.py [options] JOURNAL ENDPOINT resume

``post`` journals each file (``Uploader.add``) and uploads it (``Uploader.upload_post``):
exactly what ``Uploader.post`` does, split in two so that a marker can be printed the moment
the post row is committed. ``resume`` runs ``Uploader.resume_pending()`` once.

Markers, one per line on stdout, flushed at once (the parent counts them to pick the
moment of the ``kill -9``):

``READY <owner>``               the journal is open and the uploader built
``ADDED <post_id> <path>``      the post row is committed: from now on it must never be lost
``P <post_id> <acknowledged> <sent>``   a progress report (each block handed to the socket,
                                each offset the server acknowledged); ``resume`` prints ``-``
                                for the post id
``DONE <post_id> <state>``      ``upload_post`` returned (``resume``: after ``resume_pending``)
``EXIT``                        everything finished

Options: ``--clock-offset S`` runs the uploader and the journal on a clock S seconds ahead
(so this run may take over posts whose lease a dead run held, without waiting for it);
``--lease S``; ``--chunk N`` and ``--block N`` in bytes (0: the SDK's default);
``--wait-go`` waits for a line on stdin after ``READY`` (so two resumers can start at the
same instant).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from steadypost import DEFAULT_CHUNK_SIZE, Journal, PostOptions, Progress, RetryPolicy, Uploader

DEFAULT_CHUNK = 256 * 1024
DEFAULT_BLOCK = 64 * 1024
DEFAULT_LEASE_S = 2.0


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def offset_clock(offset_s: float) -> Callable[[], float]:
    if not offset_s:
        return time.time

    def clock() -> float:
        return time.time() + offset_s

    return clock


def progress_marker(post_id: str) -> Callable[[Progress], None]:
    def report(p: Progress) -> None:
        say(f"P {post_id} {p.acknowledged} {p.sent}")

    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("journal", type=Path)
    parser.add_argument("endpoint")
    parser.add_argument("mode", choices=("post", "resume"))
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--lease", type=float, default=DEFAULT_LEASE_S)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--block", type=int, default=DEFAULT_BLOCK)
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args(argv)
    if args.mode == "post" and not args.files:
        parser.error("post needs at least one FILE")
    if args.mode == "resume" and args.files:
        parser.error("resume takes no FILE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    clock = offset_clock(args.clock_offset)
    journal = Journal(args.journal, clock=clock)
    uploader = Uploader(
        journal=journal,
        clock=clock,
        chunk_size=args.chunk or DEFAULT_CHUNK_SIZE,
        **({"block_size": args.block} if args.block else {}),
        # Loopback server: retry fast (a 423 while the server notices a dead client's
        # connection is over in milliseconds), but never spin.
        retry=RetryPolicy(base_s=0.02, cap_s=0.5, deadline_s=120.0),
        post_options=PostOptions(lease_s=args.lease),
    )
    try:
        say(f"READY {uploader.owner}")
        if args.wait_go:
            sys.stdin.readline()
        if args.mode == "post":
            for file in args.files:
                post = uploader.add(file, args.endpoint)
                say(f"ADDED {post.post_id} {post.path}")
                done = uploader.upload_post(
                    post.post_id, on_progress=progress_marker(post.post_id)
                )
                say(f"DONE {done.post_id} {done.state.value}")
        else:
            for done in uploader.resume_pending(on_progress=progress_marker("-")):
                say(f"DONE {done.post_id} {done.state.value}")
        say("EXIT")
    finally:
        uploader.close()
        journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
