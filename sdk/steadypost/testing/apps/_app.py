"""What every simulated platform app holds: its config and the simulator's shared parts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from steadypost.testing.faults import Faults
from steadypost.testing.storage import UploadStorage

ConfigT = TypeVar("ConfigT")


class PlatformApp(Generic[ConfigT]):
    """An app behind the simulator's router: ``config``, the storage, faults, clock and lock.

    The simulator builds every app the same way; an app sets up its own state in
    :meth:`_begin` (called last by ``__init__``).
    """

    def __init__(
        self, config: ConfigT, storage: UploadStorage, *, faults: Faults,
        clock: Callable[[], float], lock: threading.RLock,
    ) -> None:  # fmt: skip
        self.config = config
        self.storage = storage
        self._faults = faults
        self._clock = clock
        self._lock = lock
        self._begin()

    def _begin(self) -> None:
        """The app's own state (none here)."""
