"""What the post flows need from an uploader: its options and its ties to the world.

:class:`~steadypost.Uploader` and :class:`~steadypost.AsyncUploader` provide
it (their shared base, ``steadypost.client._BaseUploader``); the flows in this
package only ever see this protocol, so they are written once for both and
never import the clients.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Protocol

from steadypost.drivers.observers import RunObserver
from steadypost.flow import RetryContext
from steadypost.hosts import HostGuard
from steadypost.hosts.statuspage import StatusPages
from steadypost.journal import Journal
from steadypost.lifecycle.options import PostOptions
from steadypost.models import LocalFile, Post, Progress
from steadypost.platforms.base import Platform
from steadypost.platforms.tus import ServerInfo, TusUpload
from steadypost.policy import RetryPolicy

ProgressCallback = Callable[[Progress], None]


class Wiring(Protocol):
    """An uploader, as the flows see it."""

    owner: str
    """This uploader's lease owner name in the journal."""
    clock: Callable[[], float]
    rng: random.Random
    retry_policy: RetryPolicy
    post_options: PostOptions
    chunk_size: int
    checksum: bool
    status_pages: StatusPages
    headers: Mapping[str, str]

    @property
    def journal(self) -> Journal: ...

    @property
    def host_store(self) -> Journal | None:
        """Where host state is shared (the journal, once it is open)."""
        ...

    def cancelled(self) -> bool:
        """Whether :meth:`~steadypost.Uploader.cancel` was called."""
        ...

    def guard(self) -> HostGuard: ...

    def platform(self, post: Post) -> Platform:
        """The post's platform adapter, with the account's credentials."""
        ...

    def retry_ctx(self, policy: RetryPolicy | None = None) -> RetryContext: ...

    def server_info(self, endpoint: str) -> ServerInfo | None:
        """What a tus endpoint advertised earlier in this process."""
        ...

    def observer(
        self, total: int, on_progress: ProgressCallback | None, *, post_id: str = ""
    ) -> RunObserver:
        """Progress (tagged with ``post_id``), logs and counters for one run."""
        ...

    def tus(
        self, endpoint: str, file: LocalFile, *, metadata: Mapping[str, str] | None,
        chunk_size: int | None, upload_url: str | None = None,
    ) -> TusUpload: ...  # fmt: skip
