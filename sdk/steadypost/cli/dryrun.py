"""``--dry-run``: what ``upload`` or ``resume`` would do, with nothing sent or journaled.

For ``upload`` each file is looked up as :meth:`~steadypost.Journal.add_or_join`
would: the same file (real path and identity), site and account with a post
that is not failed or cancelled is "already posted" (confirmed or
unconfirmed) or would be gone on with (queued, waiting, uploading); any other
file would become a new post. ``--new`` makes every file a new post. For
``resume``, the posts whose time has come, and when the others' comes.

Lines go to stdout (they are the result), one per file or post, and
``--json`` gives one object per line instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steadypost.cli.app import App
from steadypost.cli.output import print_json, share, size, until, when
from steadypost.models import Post, PostState

_JOINABLE = (PostState.QUEUED, PostState.UPLOADING, PostState.WAITING, PostState.UNCONFIRMED,
             PostState.CONFIRMED)  # fmt: skip
_POSTED = (PostState.CONFIRMED, PostState.UNCONFIRMED)


def _key_of(post: Post) -> str:
    from steadypost.journal.codec import account_of, file_key

    return file_key(path=post.path, identity=post.identity, endpoint=post.endpoint,
                    platform=post.platform, account=account_of(post.extra))  # fmt: skip


def existing_post(app: App, path: Path, endpoint: str, platform: str,
                  account: str) -> Post | None:  # fmt: skip
    """The post ``add_or_join`` would join for this file, site and account (read only)."""
    from steadypost import snapshot_file
    from steadypost.journal.codec import file_key

    file = snapshot_file(path)
    wanted = file_key(path=os.path.abspath(file.path), identity=file.identity, endpoint=endpoint,
                      platform=platform, account=account)  # fmt: skip
    same = [p for p in app.journal.list(state=list(_JOINABLE)) if _key_of(p) == wanted]
    return max(same, key=lambda p: (p.created_ts, p.post_id), default=None)


def plan_upload(app: App, files: Sequence[Path], endpoint: str, *, platform: str,
                account: str, new: bool, as_json: bool) -> None:  # fmt: skip
    """One line per file: new post, already posted, or would go on with its post."""
    for path in files:
        found = None if new else existing_post(app, path, endpoint, platform, account)
        record: dict[str, Any] = {"file": str(path), "bytes": path.stat().st_size,
                                  "endpoint": endpoint, "platform": platform}  # fmt: skip
        if found is None:
            record["action"] = "post"
            text = (f"would post     {path.name} ({size(path.stat().st_size)}) to {endpoint} "
                    f"({platform}){' as a new post (--new)' if new else ''}")  # fmt: skip
        elif found.state in _POSTED:
            record.update(action="already posted", post_id=found.post_id,
                          state=found.state.value)  # fmt: skip
            text = (f"already posted {path.name}: post {found.post_id} is {found.state.value}; "
                    "nothing would be sent (--new posts it again)")  # fmt: skip
        else:
            record.update(action="go on", post_id=found.post_id, state=found.state.value)
            text = (f"would go on    {path.name}: post {found.post_id} ({found.state.value}, "
                    f"{share(found)}% on the server)")  # fmt: skip
        _emit(app, record, text, as_json)
    app.note("dry run: nothing was sent, nothing was journaled")


def plan_resume(app: App, chosen: Sequence[Post], later: Sequence[Post], *,
                as_json: bool) -> None:  # fmt: skip
    """One line per post ``resume`` would take up now, and one per post left for later."""
    now = app.now()
    for post in chosen:
        name = os.path.basename(post.path)
        due = post.next_attempt_ts
        moment = "now" if due is None or due <= now else f"{until(due, now)}, at {when(due, now)}"
        text = (f"would resume   {name}: post {post.post_id} ({post.state.value}, "
                f"{share(post)}% on the server), {moment}")  # fmt: skip
        _emit(app, {"action": "resume", "post_id": post.post_id, "file": post.path,
                    "state": post.state.value, "offset": post.offset}, text, as_json)  # fmt: skip
    for post in later:
        name = os.path.basename(post.path)
        due = post.next_attempt_ts
        moment = f"its next try is {until(due, now)}, at {when(due, now)}" if due else "later"
        _emit(app, {"action": "later", "post_id": post.post_id, "file": post.path,
                    "state": post.state.value},
              f"left for later {name}: post {post.post_id} ({post.state.value}); {moment}",
              as_json)  # fmt: skip
    if not chosen and not later:
        app.note("nothing to resume")
    app.note("dry run: nothing was sent, nothing was journaled")


def _emit(app: App, record: dict[str, Any], text: str, as_json: bool) -> None:
    if as_json:
        print_json(app.out, record)
    else:
        app.out.line(text)


def due_posts(app: App, refs: Sequence[str]) -> tuple[list[Post], list[Post]]:
    """What ``resume`` would take up now and what it leaves for later, read only.

    Like ``Journal.due``: queued posts, waiting ones whose time has come, and uploading
    ones whose lease has run out (their uploader is gone); a live lease is another
    process's upload, left to it.
    """
    if refs:
        return [app.find_post(ref) for ref in refs], []
    now = app.now()
    chosen, later = [], []
    for post in app.journal.list(state=[PostState.QUEUED, PostState.WAITING,
                                        PostState.UPLOADING]):  # fmt: skip
        if post.state is PostState.UPLOADING:
            if (post.lease_expires_ts or 0.0) <= now:
                chosen.append(post)
        elif (post.next_attempt_ts or now) <= now:
            chosen.append(post)
        else:
            later.append(post)
    return chosen, later


__all__ = ["due_posts", "existing_post", "plan_resume", "plan_upload"]
