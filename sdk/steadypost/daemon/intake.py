"""How the daemon takes work: due posts, the sites it has credentials for, and claims.

A daemon looks at what is due (a window of the most overdue posts, so the
look costs the same with 10 posts or 100,000), leaves alone the posts of a
site it has no credentials for (warning once each), and starts uploads by
*claiming* them: :meth:`~steadypost.journal.Journal.claim` takes the most
overdue post this worker may upload, in one transaction (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL), so daemons claiming at the same moment get
different posts and never wait for each other, and a worker only gets posts
whose file it can read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from steadypost.daemon.sites import SiteSettings
from steadypost.journal import Journal, make_owner
from steadypost.models import Post
from steadypost.origins import origin_of

log = logging.getLogger("steadypost.daemon")


class Intake:
    """What the loop may start (see the module docstring); remembers the foreign posts."""

    def __init__(self, journal: Journal, *, lease_s: float,
                 warn_once: Callable[[str, str], None]) -> None:  # fmt: skip
        self.journal = journal
        self.lease_s = lease_s
        self.foreign: set[str] = set()
        self._warn_once = warn_once

    def is_foreign(self, post: Post, settings: SiteSettings) -> bool:
        """A post for a site without credentials here: left alone (warned about once)."""
        if post.post_id in self.foreign:
            return True
        if not settings.foreign(post.endpoint):
            return False
        self.foreign.add(post.post_id)
        self._warn_once(post.post_id, f"post {post.post_id} is for {origin_of(post.endpoint)}, "
                        "not the configured site: left alone so your credentials stay with "
                        "their site")  # fmt: skip
        return True

    def forget_sites(self) -> None:
        """The configuration was reloaded: a foreign post may have credentials now."""
        self.foreign.clear()

    def claim(
        self, slots: int, *, skip: Collection[str], settings: SiteSettings, checks: bool = False
    ) -> list[tuple[Post, str]]:
        """Claim up to ``slots`` posts to upload (or, with ``checks``, to check), not in ``skip``.

        Each comes with the owner that holds it. A check is reserved
        (:meth:`~steadypost.journal.Journal.claim_check`), so two daemons never
        ask the platform about the same post at once.
        """
        skipped = set(skip) | self.foreign
        claimed: list[tuple[Post, str]] = []
        take = self.journal.claim_check if checks else self.journal.claim
        while len(claimed) < slots:
            owner = make_owner()
            post = take(owner=owner, lease_s=self.lease_s, skip=skipped)
            if post is None:
                break
            skipped.add(post.post_id)
            if self.is_foreign(post, settings):  # beyond the due posts looked at: give it back
                if not checks:
                    self.journal.release(post.post_id, owner=owner, epoch=post.lease_epoch)
                continue
            claimed.append((post, owner))
        return claimed


def window(slots: int, skipped: Collection[object]) -> int:
    """How many due posts the loop looks at: enough for the free slots past those it skips."""
    return 2 * slots + 4 + len(skipped)
