"""Hand a finished export to steadypost from your own tool (an editor's "Publish" button).

    python examples/creator_tool.py https://uploads.example.com/files/ export.mp4 \\
        --caption "Day one at the lake"

If a ``steadypost daemon`` runs on this journal, the video is only put in the
journal and this returns at once: the daemon uploads it within seconds, waits
out outages politely, verifies unknown outcomes and survives reboots. With
``--now`` (or when no daemon runs) it is posted right here, with progress; if
the platform is failing, the post is left ``waiting`` or ``unconfirmed`` in the
journal, and the daemon or ``steadypost resume`` finishes it later: never lost,
never posted twice.

Set STEADYPOST_TOKEN to send ``Authorization: Bearer <token>`` (to the
endpoint's site only; never saved). The daemon uses its own profile's token.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from steadypost import Journal, PostState, Progress, ProgressKind, Uploader
from steadypost.daemon import running_daemon


def show(p: Progress) -> None:
    if p.kind is ProgressKind.WAIT:
        print(f"\n{p.message}", file=sys.stderr)
    elif p.total:  # p.sent moves with every block; p.acknowledged once per chunk
        print(f"\r{p.sent / p.total:6.1%} sent, {p.acknowledged / p.total:6.1%} on the server",
              end="", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("video", type=Path)
    parser.add_argument("--caption")
    parser.add_argument("--now", action="store_true", help="post here even if a daemon runs")
    args = parser.parse_args(argv)

    token = os.environ.get("STEADYPOST_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    metadata = {"filename": args.video.name}
    if args.caption:
        metadata["caption"] = args.caption

    with Journal() as journal, Uploader(journal=journal, headers=headers) as up:
        daemon = running_daemon(journal.path)
        if daemon is not None and not args.now:
            post = up.add(args.video, args.endpoint, metadata=metadata)
            print(f"queued {post.post_id}; the steadypost daemon (pid {daemon.pid}) posts it")
            return 0
        post = up.post(args.video, args.endpoint, metadata=metadata, on_progress=show)
    print(file=sys.stderr)
    print(f"{post.state.value} {post.post_id}")
    if post.state is PostState.CONFIRMED:
        return 0
    if post.state is PostState.FAILED:
        print(f"refused: {post.last_error}", file=sys.stderr)
        return 1
    print(f"saved in the journal ({post.last_error or 'outcome unknown'}); the daemon or "
          "`steadypost resume` / `steadypost verify` finishes it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
