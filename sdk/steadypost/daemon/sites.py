"""What the daemon knows about sites and posts: settings and log lines.

* :class:`SiteSettings` is what the loop needs from the configuration; the
  CLI's resolved profile fits it, and :class:`Site` is the plain version for
  library use. Credentials go only to the configured site: a post for another
  site is ``foreign`` and left alone rather than sent without (or with the
  wrong) credentials.
* A post whose uploading process is gone (``kill -9``, a crash, a power
  cut) needs nothing here: :meth:`~steadypost.journal.Journal.due` and
  :meth:`~steadypost.journal.Journal.claim` hand it over at once.
* :meth:`SiteSettings.targets` says where a watched file's posts go: the
  one endpoint, or several destinations (``--to``, a sidecar's
  ``"platforms"``), one post each, grouped.
* :func:`outcome_line` words a post's new state for the log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from steadypost.journal import describe_owner
from steadypost.models import Post, PostState
from steadypost.origins import origin_of

if TYPE_CHECKING:  # `steadypost status` starts without the upload code
    from steadypost.lifecycle.group import Target

_EMPTY: Mapping[str, str] = MappingProxyType({})


class SiteSettings(Protocol):
    """What the daemon needs from the configuration (the CLI's resolved settings fit)."""

    @property
    def endpoint(self) -> str | None: ...
    @property
    def chunk_size(self) -> int | None: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...
    def headers_for(self, url: str) -> Mapping[str, str]: ...
    def foreign(self, url: str) -> bool: ...
    def targets(self, names: Sequence[str] = ()) -> Sequence[Target]:
        """Where a new post of a watched file goes (``names``: its sidecar's ``platforms``).

        Empty when nothing is configured; ``ValueError`` for a name it does not know.
        """
        ...


@dataclass(frozen=True)
class Site:
    """Settings for library use: ``headers`` go only to ``endpoint``'s origin.

    Watched files are posted to ``endpoint`` (a tus server), or, with
    ``to``, once to each of those targets, grouped; a sidecar's
    ``"platforms"`` picks among ``to`` by platform name.
    """

    endpoint: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    chunk_size: int | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    to: tuple[Target, ...] = ()

    def targets(self, names: Sequence[str] = ()) -> Sequence[Target]:
        if names:
            known = {t.name: t for t in self.to}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"no destination named {', '.join(unknown)} "
                                 f"(known: {', '.join(known) or 'none'})")  # fmt: skip
            return [known[n] for n in names]
        if self.to:
            return self.to
        from steadypost.lifecycle.group import Target

        return (Target(None, self.endpoint),) if self.endpoint else ()

    def headers_for(self, url: str) -> Mapping[str, str]:
        if self.endpoint is None or origin_of(url) == origin_of(self.endpoint):
            return self.headers
        return _EMPTY

    def foreign(self, url: str) -> bool:
        return bool(self.headers) and not self.headers_for(url)


def _at(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "the next run"


def outcome_line(kind: str, post: Post) -> tuple[int, str]:
    """The log level and line for a post after an upload or a check."""
    name = os.path.basename(post.path)
    who = f"{name} (post {post.post_id})"
    state = post.state
    if state is PostState.CONFIRMED:
        return logging.INFO, f"{who} is up: confirmed"
    if state is PostState.UNCONFIRMED:
        what = "still unconfirmed" if kind == "check" else "sent, but no answer said it arrived"
        return logging.INFO, f"{who}: {what}; checking at {_at(post.next_attempt_ts)}"
    if state is PostState.QUEUED:
        return logging.WARNING, f"{who}: the platform does not have it; posting it again"
    if state is PostState.WAITING:
        why = post.last_error or "interrupted"
        return logging.WARNING, f"{who} waits: {why}; next try at {_at(post.next_attempt_ts)}"
    if state is PostState.FAILED:
        return logging.ERROR, f"{who} failed: {post.last_error or 'no reason given'}"
    if state is PostState.UPLOADING:
        holder = describe_owner(post.lease_owner)
        return logging.INFO, f"{who} is being uploaded by {holder}"
    return logging.INFO, f"{who} was cancelled"
