"""Per-host shared state (circuit breaker, retry budget, rate limits) in the journal.

One row per ``(host, kind)`` holding a JSON object. Every process on the
journal reads the same rows, so a breaker opened by one worker holds back
them all: on PostgreSQL the whole fleet sends what one client would. A
read-modify-write (:meth:`HostTable.update`) is one transaction that holds
the row's key lock, so two workers never both take the half-open probe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from steadypost.journal import codec
from steadypost.journal.posts import PostTable

_UPSERT = (
    "INSERT INTO hosts (host, kind, data, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (host, kind) DO UPDATE SET data = excluded.data,"
    " updated_at = excluded.updated_at"
)


class HostTable:
    """Reads and writes of the ``hosts`` table (see the module docstring)."""

    def __init__(self, posts: PostTable) -> None:
        self.posts = posts
        self.engine = posts.engine

    def get(self, host: str, kind: str) -> dict[str, Any] | None:
        rows = self.engine.rows("SELECT data FROM hosts WHERE host = ? AND kind = ?",
                                (host.lower(), kind))  # fmt: skip
        if not rows:
            return None
        value = json.loads(rows[0][0])
        return value if isinstance(value, dict) else None

    def put(self, host: str, kind: str, data: Mapping[str, Any]) -> None:
        text = codec.dumps(data)
        with self.engine.atomic():
            self.posts.lock_key(f"host {host.lower()} {kind}")
            self.engine.run(_UPSERT, (host.lower(), kind, text, self.posts.clock()))

    def update(
        self, host: str, kind: str,
        update: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:  # fmt: skip
        with self.engine.atomic():
            self.posts.lock_key(f"host {host.lower()} {kind}")
            new = dict(update(self.get(host, kind)))
            self.put(host, kind, new)
            return new
