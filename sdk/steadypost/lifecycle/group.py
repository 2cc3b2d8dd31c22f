"""One video to several platforms: a post per platform, grouped, run side by side.

``Uploader.post(path, platforms=[...])`` and ``steadypost upload clip.mp4
--to tiktok,youtube`` come here. Each platform gets its own journaled post
(its own state, lease, retries, verification and evidence), tagged with
the same group id in ``extra["group"]``; :attr:`Post.group` reads it. The
posts run through a :class:`~steadypost.flow.Concurrently` effect, so one
platform's outage (waits, an open breaker, a stalled upload) never holds
back the others, and each post joins its own earlier post of the file as a
single post would: running the same command twice posts nothing twice.

The group id of a file is derived from the file (its real path and
identity), so every group call for the same video lands in the same group
unless you name one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from steadypost.flow import Concurrently, Flow
from steadypost.journal import AddResult
from steadypost.lifecycle import upload as post_flows
from steadypost.lifecycle.wiring import ProgressCallback, Wiring
from steadypost.models import FileIdentity, Post, PostState
from steadypost.platforms.base import Platform
from steadypost.platforms.registry import available

GROUP_KEY = "group"
"""The key of a post's group id in ``Post.extra``."""


@dataclass(frozen=True)
class Target:
    """Where one post of a group goes: a platform adapter and its API base.

    ``platform=None`` is a plain tus server. ``endpoint=None`` means the
    platform's own API (``steadypost platforms`` lists each default); tus
    and post-api servers need theirs.
    """

    platform: Platform | None = None
    endpoint: str | None = None

    @property
    def name(self) -> str:
        """The platform's name, as journaled."""
        return self.platform.name if self.platform is not None else "tus"

    def resolved_endpoint(self) -> str:
        """The endpoint to journal; ``ValueError`` when the platform has no default."""
        if self.endpoint:
            return self.endpoint
        default = {info.name: info.default_endpoint for info in available()}.get(self.name)
        if not default:
            raise ValueError(
                f"platform {self.name!r} has no default endpoint: "
                "pass Target(platform, endpoint=URL)"
            )
        return default


@dataclass(frozen=True)
class PostGroup:
    """The posts of one video to several platforms, in the order the targets were given."""

    group_id: str
    posts: tuple[Post, ...]

    def __iter__(self) -> Iterator[Post]:
        return iter(self.posts)

    def __len__(self) -> int:
        return len(self.posts)

    @property
    def by_platform(self) -> Mapping[str, Post]:
        """Each post by its platform's name (the last one, if a platform is named twice)."""
        return {post.platform: post for post in self.posts}

    @property
    def settled(self) -> bool:
        """Whether every post is confirmed, failed or cancelled (nothing left to do)."""
        return all(post.state.finished for post in self.posts)

    @property
    def confirmed(self) -> bool:
        """Whether every platform holds the video."""
        return all(post.state is PostState.CONFIRMED for post in self.posts)


def as_targets(platforms: Sequence[Platform | Target]) -> tuple[Target, ...]:
    """``platforms`` as targets; ``ValueError`` for an empty list or a platform without endpoint."""
    targets = tuple(p if isinstance(p, Target) else Target(p) for p in platforms)
    if not targets:
        raise ValueError("platforms is empty: name at least one platform to post to")
    for target in targets:
        target.resolved_endpoint()
    return targets


def group_id_for(path: str | os.PathLike[str], identity: FileIdentity) -> str:
    """The group id of a video: the same for the same file, unchanged, at the same path."""
    real = os.path.normcase(os.path.realpath(os.fsdecode(path)))
    parts = (real, identity.size, identity.mtime_ns, identity.dev, identity.inode)
    digest = hashlib.sha256(repr(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return f"g-{digest[:16]}"


def post_group(
    up: Wiring, group_id: str, added: Sequence[AddResult], *,
    chunk_size: int | None, on_progress: ProgressCallback | None,
) -> Flow[PostGroup]:  # fmt: skip
    """Upload each post of the group side by side; the group as its posts end.

    A post that cannot go on (joined while confirmed, busy in another
    process, its host resting) returns at once and the others go on.
    """
    flows = tuple(post_flows.post(up, a, chunk_size=chunk_size, on_progress=on_progress)
                  for a in added)  # fmt: skip
    ended: list[Post] = yield Concurrently(flows)
    return PostGroup(group_id, tuple(ended))
