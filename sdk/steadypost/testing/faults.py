"""Fault rules: small, frozen descriptions of how the simulated platform misbehaves.

Give them to ``PlatformSimulator(faults=[...])`` or add them while a test runs
(``sim.faults.add(rule)``). Every rule can be limited in time and in count:

``start`` / ``end``
    Epoch seconds on the shared :class:`~steadypost.testing.FakeClock`; the
    rule is active while ``start <= now < end`` (``None`` = unbounded).
``times``
    How many requests it affects before it is used up (``None`` = unlimited).

Each rule says below what a client sees, in the in-process transport and in the
real :class:`~steadypost.testing.SimulatorServer`. Rules that answer *before*
the work (``Outage``, ``Respond``) are checked first, outages before the rest,
each kind in the order the rules were added.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import KW_ONLY, dataclass
from typing import Literal, Protocol, TypeAlias, TypeVar

#: How long the real server keeps a connection silent for ``ProcessedButTimeout``.
DEFAULT_HOLD_S = 3.0
#: Why ``RejectMedia`` says the video was refused, unless told otherwise.
DEFAULT_REJECT_REASON = "unsupported media: the video codec is not accepted"

#: The steps ``ProcessedButError`` / ``ProcessedButTimeout`` can hit.
#: ``final_patch`` is the request that stores an upload's last byte (a PATCH,
#: or a creation-with-upload POST carrying the whole file).
STEPS: frozenset[str] = frozenset({"create", "patch", "final_patch", "delete", "publish"})
OffsetLie = Literal["missing", "beyond_length", "backwards"]


def _names(value: Collection[str] | str | None, *, upper: bool) -> frozenset[str] | None:
    if value is None:
        return None
    items = {value} if isinstance(value, str) else set(value)
    return frozenset(item.upper() if upper else item for item in items)


class FaultRule(Protocol):
    """What every rule has: an active window and a use count."""

    @property
    def start(self) -> float | None: ...
    @property
    def end(self) -> float | None: ...
    @property
    def times(self) -> int | None: ...


@dataclass(frozen=True, kw_only=True)
class _Rule:
    start: float | None = None
    end: float | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0 or None, not {self.times!r}")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("a rule's end comes before its start")


@dataclass(frozen=True)
class Outage:
    """The platform is down from ``start`` until ``end`` (fake-clock epoch seconds).

    ``mode="503"``: every request is answered ``503 Service Unavailable``
    without being acted on, with ``Retry-After`` when ``retry_after`` is set
    (seconds, or a string sent verbatim such as an :func:`http_date`).
    ``mode="refuse"``: connections are refused: the in-process transport raises
    ``httpx.ConnectError``; the real server closes its port for the window.
    ``path`` limits the outage to paths starting with it (e.g. ``"/posts"``);
    a refusing outage limited to a path resets the connection on the real
    server, since a closed port cannot choose by path.
    """

    start: float
    end: float
    _: KW_ONLY
    mode: Literal["503", "refuse"] = "503"
    retry_after: float | str | None = None
    path: str | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("an outage's end comes before its start")
        if self.mode not in ("503", "refuse"):
            raise ValueError(f"mode must be '503' or 'refuse', not {self.mode!r}")


@dataclass(frozen=True, kw_only=True)
class Respond(_Rule):
    """Answer matching requests with ``status`` instead of handling them (nothing is done).

    For example ``Respond(status=423, times=2, methods={"PATCH"})`` (tus lock),
    ``Respond(status=429, retry_after=30)``, or ``Respond(status=200,
    html=True, path="/posts")`` for a captive portal's HTML where JSON was
    expected. The body is ``{"error": ...}`` JSON unless ``body`` or ``html``
    is given. ``headers`` are extra ``(name, value)`` pairs.
    """

    status: int
    retry_after: float | str | None = None
    html: bool = False
    body: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    methods: Collection[str] | None = None
    path: str | None = None
    times: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 100 <= self.status <= 599:
            raise ValueError(f"not an HTTP status: {self.status!r}")
        object.__setattr__(self, "methods", _names(self.methods, upper=True))


@dataclass(frozen=True, kw_only=True)
class ResetMidChunk(_Rule):
    """Break the connection after the server has read ``after_bytes`` of a request body.

    The server keeps the bytes it received, as real tus servers do, so a HEAD
    then reports the new offset; a chunk sent with ``Upload-Checksum`` is
    discarded instead, because it cannot be verified. If the body is shorter,
    all of it is stored and the connection breaks before the answer. In
    process the client gets ``httpx.ReadError``; the real server closes the
    socket with a TCP RST.
    """

    after_bytes: int
    methods: Collection[str] | None = frozenset({"PATCH"})
    path: str | None = None
    times: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        object.__setattr__(self, "methods", _names(self.methods, upper=True))


def _steps(on: Collection[str] | str) -> frozenset[str]:
    steps = _names(on, upper=False) or frozenset()
    unknown = steps - STEPS
    if unknown:
        raise ValueError(f"unknown steps {sorted(unknown)}; choose from {sorted(STEPS)}")
    return steps


@dataclass(frozen=True, kw_only=True)
class ProcessedButError(_Rule):
    """Do the work, then answer ``status`` (500 by default) as if it had failed.

    The classic ambiguous failure: on ``"publish"`` the post goes live although
    the client was told 500; on ``"final_patch"`` every byte is stored. ``on``
    is a set of :data:`STEPS`.
    """

    status: int = 500
    on: Collection[str] = frozenset({"publish"})
    times: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "on", _steps(self.on))


@dataclass(frozen=True, kw_only=True)
class ProcessedButTimeout(_Rule):
    """Do the work, then never answer.

    In process the client gets ``httpx.ReadTimeout`` at once; the real server
    keeps the connection silent until the client gives up or ``hold_s``
    seconds pass, then closes it. ``on`` is a set of :data:`STEPS`.
    """

    on: Collection[str] = frozenset({"publish"})
    hold_s: float = DEFAULT_HOLD_S
    times: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "on", _steps(self.on))


@dataclass(frozen=True, kw_only=True)
class BadUploadOffset(_Rule):
    """Do the work, then lie in the ``Upload-Offset`` header of HEAD / PATCH answers.

    ``report="missing"`` drops the header; ``"beyond_length"`` says
    ``Upload-Length + 1``; ``"backwards"`` says one byte less than the server
    had already acknowledged (the PATCH's own ``Upload-Offset``, or the stored
    offset for a HEAD; ``-1`` at the very start). A careful client stops
    rather than send bytes at a wrong position.
    """

    report: OffsetLie = "missing"
    methods: Collection[str] | None = frozenset({"HEAD", "PATCH"})
    times: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.report not in ("missing", "beyond_length", "backwards"):
            raise ValueError(f"unknown report {self.report!r}")
        object.__setattr__(self, "methods", _names(self.methods, upper=True))


@dataclass(frozen=True, kw_only=True)
class SlowProcessing(_Rule):
    """Publishes accepted while active stay ``processing`` for ``seconds`` of clock time.

    Overrides the simulator's ``processing_s`` for those posts.
    """

    seconds: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")


@dataclass(frozen=True, kw_only=True)
class RejectMedia(_Rule):
    """Publishes accepted while active end ``failed`` with ``reason`` after processing.

    ``retryable=False`` (the default) is a rejection for good, e.g. an
    unsupported codec; ``retryable=True`` a platform-side failure after which
    posting again with the same idempotency key is accepted.
    """

    reason: str = DEFAULT_REJECT_REASON
    retryable: bool = False


#: Every fault rule type, for annotations: ``faults: list[Fault]``.
Fault: TypeAlias = (
    Outage
    | Respond
    | ResetMidChunk
    | ProcessedButError
    | ProcessedButTimeout
    | BadUploadOffset
    | SlowProcessing
    | RejectMedia
)


R = TypeVar("R", bound=FaultRule)


@dataclass
class _Armed:
    rule: Fault
    fired: int = 0

    def usable(self, now: float) -> bool:
        rule = self.rule
        if rule.times is not None and self.fired >= rule.times:
            return False
        if rule.start is not None and now < rule.start:
            return False
        return rule.end is None or now < rule.end


class Faults:
    """An ordered, changeable list of fault rules and how often each has fired."""

    def __init__(self, rules: Iterable[Fault] = ()) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = [_Armed(rule) for rule in rules]
        self._listeners: list[Callable[[], None]] = []

    def add(self, *rules: Fault) -> None:
        """Append rules; they apply from the next request on."""
        with self._lock:
            self._armed.extend(_Armed(rule) for rule in rules)
        self._changed()

    def remove(self, rule: Fault) -> None:
        """Remove every rule equal to ``rule`` (no error if there is none)."""
        with self._lock:
            self._armed = [armed for armed in self._armed if armed.rule != rule]
        self._changed()

    def clear(self) -> None:
        """Remove every rule: the platform behaves from now on."""
        with self._lock:
            self._armed = []
        self._changed()

    def replace(self, rules: Iterable[Fault]) -> None:
        """Swap the whole plan for ``rules`` (counts start again from zero)."""
        with self._lock:
            self._armed = [_Armed(rule) for rule in rules]
        self._changed()

    @property
    def rules(self) -> tuple[Fault, ...]:
        """Every rule, used up or not, in order."""
        with self._lock:
            return tuple(armed.rule for armed in self._armed)

    def fired(self, rule: Fault) -> int:
        """How many requests rules equal to ``rule`` have affected so far."""
        with self._lock:
            return sum(armed.fired for armed in self._armed if armed.rule == rule)

    def take(
        self, kind: type[R], now: float, accept: Callable[[R], bool] = lambda _rule: True
    ) -> R | None:
        """The first usable rule of ``kind`` that ``accept`` approves, counted as fired.

        Used by the simulator for each request; tests rarely need it.
        """
        with self._lock:
            for armed in self._armed:
                rule = armed.rule
                if isinstance(rule, kind) and armed.usable(now) and accept(rule):
                    armed.fired += 1
                    return rule
        return None

    def active(self, kind: type[R], now: float) -> list[R]:
        """The usable rules of ``kind`` at ``now``, without counting them as fired."""
        with self._lock:
            return [
                armed.rule
                for armed in self._armed
                if isinstance(armed.rule, kind) and armed.usable(now)
            ]

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every change; returns an unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _changed(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
