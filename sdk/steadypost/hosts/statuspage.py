"""A platform's public status page: while it reports a major outage, uploads wait.

Many platforms publish their health as a Statuspage-style JSON document
(``https://status.example.com/api/v2/status.json``)::

    {"status": {"indicator": "none" | "minor" | "major" | "critical",
                "description": "Partial System Outage"}}

Give steadypost that URL per upload origin (a CLI profile's status page, or
``Uploader(status_pages={"https://uploads.example.com": "https://status..."})``)
and, before a post's upload begins, it looks at the page at most once a minute
(:data:`DEFAULT_STATUS_INTERVAL_S`). While the page says ``major`` or
``critical``, the post is not started: it waits in the journal (``waiting``)
until the next look, with a :class:`~steadypost.errors.HostUnavailableError`
naming the page's description. ``none`` and ``minor`` let uploads go (a minor
incident usually concerns another feature; the circuit breaker still guards
the upload host itself). A status page that cannot be read never blocks
uploads.

The look itself is a flow (:func:`fetch_status`): it yields one ``GET`` for the
driver to send (without the creator's headers: they are for the upload host),
so it is tested like every other flow. What the page said is kept per process
and, when there is a journal, in its host table (kind ``"status"``), so the CLI
and the daemon share one look a minute.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from steadypost.errors import HostUnavailableError, JournalError, StatusError, SteadypostError
from steadypost.flow import Flow, Request, Response
from steadypost.hosts import HostStateStore, host_name, origin_of
from steadypost.platforms.http import json_object

log = logging.getLogger("steadypost")

DEFAULT_STATUS_INTERVAL_S = 60.0
"""A status page is read at most once per this many seconds (per origin)."""
DEFAULT_BLOCKING_INDICATORS = frozenset({"major", "critical"})
DEFAULT_STATUS_TIMEOUT_S = 10.0
#: The journal host-table ``kind`` of a status page's last answer.
STATUS_KIND = "status"
UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class StatusPageOptions:
    """How status pages are read. Every field has a named default."""

    interval_s: float = DEFAULT_STATUS_INTERVAL_S
    """At most one look per origin per this many seconds."""
    blocking_indicators: frozenset[str] = DEFAULT_BLOCKING_INDICATORS
    """Indicators during which uploads wait."""
    timeout_s: float = DEFAULT_STATUS_TIMEOUT_S
    """Read timeout of the status request (a slow status page must not hold an upload)."""

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError("StatusPageOptions.interval_s must be > 0")


@dataclass(frozen=True)
class PageStatus:
    """What a status page said (``indicator`` ``"unknown"`` when it could not be read)."""

    indicator: str
    description: str
    checked_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "indicator": self.indicator, "description": self.description,
            "checked_at": self.checked_at,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PageStatus | None:
        if not data:
            return None
        try:
            return cls(str(data["indicator"]), str(data.get("description", "")),
                       float(data["checked_at"]))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None


def parse_status(request: Request, response: Response, *, now: float) -> PageStatus:
    """Read a Statuspage ``status.json`` answer; anything else is an error."""
    if response.status != 200:
        raise StatusError(
            f"status page {request.url} answered {response.status}",
            status=response.status, method=request.method, url=request.url,
        )  # fmt: skip
    data = json_object(request, response)
    status = data.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("indicator"), str):
        raise StatusError(
            f"status page {request.url} has no status.indicator", status=response.status,
            method=request.method, url=request.url,
        )  # fmt: skip
    return PageStatus(
        status["indicator"].strip().lower(), str(status.get("description") or ""), now
    )


def fetch_status(
    url: str, *, clock: Callable[[], float], timeout_s: float = DEFAULT_STATUS_TIMEOUT_S
) -> Flow[PageStatus]:
    """The flow that reads one status page: one ``GET``, no credentials."""
    request = Request("GET", url, (("Accept", "application/json"),), timeout_s=timeout_s)
    response: Response = yield request
    return parse_status(request, response, now=clock())


class StatusPages:
    """The status pages of some upload origins, and what each last said. Thread-safe.

    ``pages`` maps an upload origin (or any URL on it) to its status page URL.
    """

    def __init__(
        self, pages: Mapping[str, str] | None = None, options: StatusPageOptions | None = None
    ) -> None:
        self.pages: Mapping[str, str] = MappingProxyType(
            {origin_of(origin): url for origin, url in (pages or {}).items()}
        )
        self.options = options or StatusPageOptions()
        self._lock = threading.Lock()
        self._last: dict[str, PageStatus] = {}

    def __bool__(self) -> bool:
        return bool(self.pages)

    def last(self, origin: str, store: HostStateStore | None = None) -> PageStatus | None:
        """What ``origin``'s status page said last (in the store, or this process)."""
        origin = origin_of(origin)
        if store is not None:
            try:
                stored = PageStatus.from_json(store.get_host_state(origin, STATUS_KIND))
            except JournalError as exc:
                log.warning("status of %s unreadable from the journal: %s", origin, exc)
            else:
                if stored is not None:
                    with self._lock:
                        mine = self._last.get(origin)
                        if mine is None or stored.checked_at >= mine.checked_at:
                            self._last[origin] = stored
        with self._lock:
            return self._last.get(origin)

    def _remember(self, origin: str, status: PageStatus, store: HostStateStore | None) -> None:
        with self._lock:
            self._last[origin] = status
        if store is not None:
            try:
                store.update_host_state(origin, STATUS_KIND, lambda _old: status.to_json())
            except JournalError as exc:
                log.warning("cannot store the status of %s: %s", origin, exc)

    def refusal(
        self, url: str, now: float, store: HostStateStore | None = None
    ) -> HostUnavailableError | None:
        """The error to wait with if ``url``'s platform reported a major outage at its last look.

        ``None`` once the look is older than the interval: the next one decides.
        """
        origin = origin_of(url)
        if origin not in self.pages:
            return None
        status = self.last(origin, store)
        if status is None or status.indicator not in self.options.blocking_indicators:
            return None
        next_look = status.checked_at + self.options.interval_s
        if now >= next_look:
            return None  # stale: the next look decides
        wait = max(1.0, next_look - now)
        host = host_name(origin)
        what = f" ({status.description})" if status.description else ""
        return HostUnavailableError(
            f"{host} is recovering: its status page reports a {status.indicator} outage{what}; "
            f"next look in {math.ceil(wait)} s",
            host=host, retry_after=wait, reason="status page",
        )  # fmt: skip

    def gate(
        self, url: str, *, clock: Callable[[], float], store: HostStateStore | None = None
    ) -> Flow[None]:
        """Look at ``url``'s status page if a minute has passed; raise while it reports an outage.

        Raises :class:`~steadypost.errors.HostUnavailableError` (the post
        waits until the next look). Does nothing for an origin without a page.
        """
        origin = origin_of(url)
        page = self.pages.get(origin)
        if page is None:
            return
        now = clock()
        last = self.last(origin, store)
        if last is None or now - last.checked_at >= self.options.interval_s:
            # Mark the look before making it, so concurrent uploads do not look too.
            before = last or PageStatus(UNKNOWN, "", now)
            self._remember(origin, PageStatus(before.indicator, before.description, now), store)
            try:
                timeout_s = self.options.timeout_s
                status = yield from fetch_status(page, clock=clock, timeout_s=timeout_s)
            except SteadypostError as exc:
                log.warning("cannot read the status page %s: %s", page, exc)
                status = PageStatus(UNKNOWN, f"unreadable: {exc}", now)
            self._remember(origin, status, store)
        refusal = self.refusal(origin, clock(), store)
        if refusal is not None:
            raise refusal


__all__ = [
    "DEFAULT_BLOCKING_INDICATORS",
    "DEFAULT_STATUS_INTERVAL_S",
    "STATUS_KIND",
    "PageStatus",
    "StatusPageOptions",
    "StatusPages",
    "fetch_status",
    "parse_status",
]
