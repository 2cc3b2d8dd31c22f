"""Posts another process works on: what ``resume`` (and ``upload``) say about them.

* uploading in another live process: says which process (the daemon, or a
  pid), and leaves it to that one (exit 4: the post is not finished yet);
* uploading under a process that is gone: taken over, from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from steadypost import Post, PostState
from steadypost.daemon.lock import running_daemon
from steadypost.journal import describe_owner, owner_pid

from .app import App


def holder(app: App, post: Post) -> str:
    """Who holds the post's lease, in words: the daemon, or which process."""
    daemon = running_daemon(app.journal.path)
    pid = owner_pid(post.lease_owner)
    if daemon is not None and pid is not None and pid == daemon.pid:
        return f"the steadypost daemon (pid {pid})"
    return describe_owner(post.lease_owner)


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
