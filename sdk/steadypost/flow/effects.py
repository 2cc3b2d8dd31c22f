"""The sans-I/O core: flows are generators that *yield effects*.

A flow (creating a tus upload, sending its chunks, publishing a post, ...) is
written once, as a generator. It yields what it needs done and receives the
answer::

    response = yield Request("HEAD", url, headers)   # the driver sends it
    yield Sleep(12.5, "server busy (503)")           # the driver waits
    yield Emit(OffsetAcknowledged(...))              # the driver reports it
    wait = yield Acquire("api.host", "key", "init", 6, 60.0, now)  # a rate-limit slot

The sync driver (:mod:`steadypost.drivers`) pumps the generator with
``httpx.Client``, the async driver with ``httpx.AsyncClient``; neither holds any
protocol logic. A failed exchange is *thrown into* the generator as a
:class:`~steadypost.errors.TransportError`, so flows handle network failures
with ordinary ``try``/``except``.

:func:`~steadypost.flow.retrying.with_retries` runs one attempt-flow under
tenacity's retry state machine, turning tenacity's "sleep" decisions into
:class:`Sleep` effects.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from steadypost.models import LocalFile

T = TypeVar("T")


@dataclass(frozen=True)
class FileBody:
    """A request body streamed from disk: ``length`` bytes of ``file`` from ``offset``.

    The driver reads it in small blocks from the run's one open descriptor of
    the file, so memory does not grow with the chunk or file size, and checks
    that it is still the file ``file`` describes (a file changed mid-upload is
    a :class:`~steadypost.errors.FileProblemError`).
    """

    file: LocalFile
    offset: int
    length: int
    prefix: bytes = b""
    """Bytes sent before the file's (a ``multipart/form-data`` part's head, say)."""
    suffix: bytes = b""
    """Bytes sent after the file's (the multipart closing boundary)."""

    @property
    def wire_length(self) -> int:
        """Every byte the body puts on the wire: ``prefix`` + the file's ``length`` + ``suffix``."""
        return len(self.prefix) + self.length + len(self.suffix)

    @property
    def end(self) -> int:
        """The file position after the body's last byte."""
        return self.offset + self.length


@dataclass(frozen=True)
class Request:
    """An HTTP request a flow wants sent. ``headers`` keep their order."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | FileBody | None = None
    timeout_s: float | None = None
    """Overrides the read timeout for this request (e.g. a long final PATCH)."""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def body_length(self) -> int:
        if self.body is None:
            return 0
        if isinstance(self.body, FileBody):
            return self.body.wire_length
        return len(self.body)


@dataclass(frozen=True)
class Response:
    """The answer to a :class:`Request`. Header names are lower-cased.

    ``received_at`` is when the driver got it, on the driver's clock (UTC
    epoch seconds; ``None`` in an answer a test made by hand): flows read the
    time of an answer from it, not from a clock of their own.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    content: bytes = b""
    url: str = ""
    received_at: float | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before going on; ``reason`` is shown to the user."""

    seconds: float
    reason: str
    logged: bool = False
    """The retry loop has logged this wait already (the driver does not say it again)."""


@dataclass(frozen=True)
class Digest:
    """Read ``body`` from disk and answer its raw digest (``hashlib`` name ``algorithm``).

    Used for the tus checksum extension, whose header must precede the body.
    """

    body: FileBody
    algorithm: str


class Hasher(Protocol):
    """The file's SHA-256 in the making (:class:`steadypost.drivers.files.FileHasher`)."""

    @property
    def future(self) -> Future[str]: ...

    def result(self) -> str: ...


@dataclass(frozen=True)
class FileSha256:
    """Wait for the whole file's SHA-256 from ``hasher``; answered with the hex digest.

    The hasher runs on its own thread from the moment the upload began (see
    :mod:`steadypost.drivers.files`); by the time the server holds every byte it has
    usually finished. A changed or unreadable file is thrown into the flow as a
    :class:`~steadypost.errors.FileProblemError`.
    """

    hasher: Hasher


@dataclass(frozen=True)
class Emit:
    """Tell the driver's observer something happened (progress, a new upload URL)."""

    event: object


@dataclass(frozen=True)
class Acquire:
    """Take one slot of a documented rate limit before a request; answered with a wait.

    The driver's :class:`~steadypost.hosts.ratelimit.RateLimiter` answers ``0.0``
    when the slot was taken at ``now``, otherwise the seconds until one frees
    up (the flow then yields a :class:`Sleep` and asks again). ``scope`` is
    the API's host, ``key`` names the account without a secret (e.g.
    ``tiktok-rate:<token hash>``), ``bucket`` the limited endpoint: at most
    ``limit`` grants per ``window_s`` seconds (``None``: nothing is counted, only a
    hold is honoured).
    """

    scope: str
    key: str
    bucket: str
    limit: int | None
    window_s: float
    now: float
    hold_until: float | None = None
    """The platform said ``bucket`` is closed until then (a daily quota's reset, say):
    the limiter keeps it with the account's state and answers every ``Acquire`` of
    the bucket before then with the wait, whatever ``limit`` says."""


@dataclass(frozen=True)
class NoProgress:
    """The last answer from ``url``'s host was a failure although its status said yes.

    Yielded right after such an answer (a ``204`` that did not move the offset):
    the driver then counts that exchange as a *failed* one with the host's
    retry budget and circuit breaker, not as a success. ``reason`` is logged.
    """

    url: str
    reason: str


@dataclass(frozen=True)
class Misconfigured:
    """The last answer (or failure) from ``url`` shows a wrong endpoint, not a host in trouble.

    Yielded just before a flow raises :class:`~steadypost.errors.ConfigurationError`:
    the driver then tells the host's guard nothing about that exchange, so a
    wrong URL leaves no breaker state and spends no retry budget.
    """

    url: str
    reason: str


class Observer(Protocol):
    """Told what happens while a flow runs: the one observer protocol of the drivers.

    The driver reports every exchange, wait and event *before* the flow goes
    on (which is what lets the journal write intent before the next request),
    and each block of a request body as it is handed to the network. An
    exception raised here stops the run (the journal uses that when a post was
    cancelled or taken over by another process).
    """

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None: ...  # fmt: skip

    def on_wait(self, sleep: Sleep) -> None: ...

    def on_event(self, event: object) -> None: ...

    def on_body(self, body: FileBody, position: int) -> None: ...


class NullObserver:
    """Ignores everything."""

    def on_exchange(
        self, request: Request, response: Response | None,
        error: BaseException | None, elapsed_s: float,
    ) -> None:  # fmt: skip
        return None

    def on_wait(self, sleep: Sleep) -> None:
        return None

    def on_event(self, event: object) -> None:
        return None

    def on_body(self, body: FileBody, position: int) -> None:
        return None


@dataclass(frozen=True)
class Drive:
    """Run ``flow`` to its end under its own ``observer``; answered with its result.

    How an operation flow (upload a journaled post, resume every due post,
    verify, cancel) runs each post's protocol flow with that post's journal
    recorder and open file: the driver pumps ``flow`` as it pumps any flow,
    then sends its value back (or throws in what it raised). If the driver
    is stopped meanwhile (Ctrl-C, a cancelled task), it closes ``flow`` and
    then the flow that yielded this: ``GeneratorExit`` is how a flow learns it
    was interrupted. ``file`` is the run's open file (a
    :class:`steadypost.drivers.files.OpenedFile`) that request bodies are read from.
    """

    flow: Flow[Any]
    observer: Observer
    file: Any = None


@dataclass(frozen=True)
class Concurrently:
    """Run ``flows`` side by side, each to its end; answered with their results, in order.

    How one video goes to several platforms without one platform's outage
    holding back the others: the sync driver runs each flow on its own thread,
    the async driver as its own task. If any flow raised, the first exception
    is thrown in once all have ended. Stopped from outside (Ctrl-C, a
    cancelled task), the driver cancels the uploader, so every flow stops at
    its next block or wait with its offset saved.
    """

    flows: tuple[Flow[Any], ...]


Effect = (
    Request | Sleep | Digest | FileSha256 | Emit | Acquire | NoProgress | Misconfigured | Drive
    | Concurrently
)
Flow = Generator[Effect, Any, T]


def make_headers(
    *groups: Iterable[tuple[str, str]] | Mapping[str, str],
) -> tuple[tuple[str, str], ...]:
    """Merge header groups into a tuple; later groups win, names compared case-insensitively."""
    merged: dict[str, tuple[str, str]] = {}
    for group in groups:
        items = group.items() if isinstance(group, Mapping) else group
        for key, value in items:
            merged[key.lower()] = (key, value)
    return tuple(merged.values())
