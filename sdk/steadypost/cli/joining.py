"""One post per file: what ``upload``/``add`` say when a file already has its post.

A repeated ``steadypost upload FILE`` (or ``add``), to the same site and
account, joins the post the file has unless it failed or was cancelled:

* confirmed or unconfirmed: ``already posted: <id> confirmed``; nothing is sent;
* queued or waiting: ``joining post <id> (waiting, next try at 14:05)``;
  ``upload`` goes on with it now;
* uploading in another live process: ``upload`` says which process, and
  leaves it to that one (exit 4: the post is not finished yet).

``--new`` posts the file again on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

import click

from steadypost import Post, PostState
from steadypost.cli.app import App
from steadypost.cli.output import when
from steadypost.daemon.lock import running_daemon
from steadypost.journal import AddResult, describe_owner, owner_pid

F = TypeVar("F", bound=Callable[..., Any])

_SETTLED = (PostState.CONFIRMED, PostState.UNCONFIRMED)


def new_option(f: F) -> F:
    return click.option(
        "--new", "new", is_flag=True,
        help="Make a new post even if this file already has one for this site and account "
        "(by default a repeated upload joins the post the file has, unless it failed or was "
        "cancelled).",
    )(f)  # fmt: skip


def holder(app: App, post: Post) -> str:
    """Who holds the post's lease, in words: the daemon, or which process."""
    daemon = running_daemon(app.journal.path)
    pid = owner_pid(post.lease_owner)
    if daemon is not None and pid is not None and pid == daemon.pid:
        return f"the steadypost daemon (pid {pid})"
    return describe_owner(post.lease_owner)


def joined(app: App, result: AddResult) -> bool:
    """Say that a post was joined (if it was); True if nothing is left to upload now."""
    if not result.joined:
        return False
    post = result.post
    if post.state in _SETTLED:
        app.note(f"already posted: {post.post_id} {post.state.value} ({post.path}); "
                 "--new posts it again")  # fmt: skip
        return True
    detail = post.state.value
    due = post.next_attempt_ts
    if post.state is PostState.WAITING and due is not None:
        detail += f", next try at {when(due, app.now())}"
    app.note(f"joining post {post.post_id} ({detail}) instead of posting {post.path} again; "
             "--new posts it again")  # fmt: skip
    return False


def busy_elsewhere(app: App, post: Post, owner: str) -> bool:
    """Say so if another live process is uploading the post; True if it is."""
    if post.state is not PostState.UPLOADING or post.lease_owner in (None, owner):
        return False
    app.note(f"post {post.post_id} is being uploaded by {holder(app, post)}; not uploading it "
             "twice: `steadypost list` shows how far it is")  # fmt: skip
    return True


def around_resume(app: App, due: Iterable[Post], resumed: Collection[str]) -> list[Post]:
    """Notes on what ``resume`` finds; returns the unfinished posts it leaves to others.

    Left to others: posts another live process is uploading, and unconfirmed
    posts whose check is due (``steadypost verify`` does that); ``resume``
    never exits 0 while there are any. Noted too: posts it takes over from a
    process that is gone.
    """
    due = list(due)
    for post in due:
        if post.state is PostState.UPLOADING:
            app.note(f"post {post.post_id}: taking over from {describe_owner(post.lease_owner)}, "
                     f"which is gone (or stalled past its lease); going on from byte "
                     f"{post.offset:,}")  # fmt: skip
    busy = [p for p in app.journal.list(state=PostState.UPLOADING) if p.post_id not in resumed]
    for post in busy:
        busy_elsewhere(app, post, owner="")
    unchecked = [p for p in due if p.state is PostState.UNCONFIRMED]
    if unchecked:
        app.note(f"{len(unchecked)} unconfirmed post(s) are due for their check: "
                 "`steadypost verify` checks them")  # fmt: skip
    return busy + unchecked
