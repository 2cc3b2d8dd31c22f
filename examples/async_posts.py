"""Post several videos at once with asyncio, then settle the ones whose outcome is unknown.

    python examples/async_posts.py https://uploads.example.com/files/ a.mp4 b.mp4 --settle

Each video becomes a journaled post (``AsyncUploader.post``), all uploading
concurrently. A post the platform may or may not have processed ends
``unconfirmed`` and is checked 15-30 minutes later: with ``--settle`` this
script stays and runs those checks itself (``verify_due``) until every post
is settled; without it, ``steadypost daemon`` (or ``steadypost verify``) does.

Set STEADYPOST_TOKEN to send ``Authorization: Bearer <token>`` (to the
endpoint's site only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import datetime, timezone

from steadypost import AsyncUploader, Post, PostState


def report(posts: list[Post]) -> None:
    for post in posts:
        print(f"{post.state.value:<12} {os.path.basename(post.path)}  {post.post_id}")


async def settle(up: AsyncUploader, posts: list[Post]) -> list[Post]:
    """Run each unconfirmed post's check when it is due, until none is left."""
    ids = {p.post_id for p in posts}
    while True:
        pending = [p for p in up.journal.list(state=PostState.UNCONFIRMED) if p.post_id in ids]
        if not pending:
            return [up.journal.get(post_id) for post_id in ids]
        first = min(p.next_attempt_at or datetime.now(timezone.utc) for p in pending)
        left = max(0.0, (first - datetime.now(timezone.utc)).total_seconds())
        print(f"{len(pending)} unconfirmed; next check in {left:.0f} s "
              f"(at {first.astimezone():%H:%M})")
        await asyncio.sleep(left)
        for checked in await up.verify_due(post_ids=ids):
            if checked.state is PostState.QUEUED:  # the platform lost it: send it again
                await up.upload_post(checked.post_id)


async def main(endpoint: str, paths: list[str], *, wait: bool) -> int:
    token = os.environ.get("STEADYPOST_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with AsyncUploader(headers=headers) as up:
        posts = list(await asyncio.gather(*(up.post(path, endpoint) for path in paths)))
        report(posts)
        if wait:
            posts = await settle(up, posts)
            report(posts)
    return 0 if all(p.state is PostState.CONFIRMED for p in posts) else 3


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--settle", action="store_true", help="stay and verify unknown outcomes")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.endpoint, args.paths, wait=args.settle)))
