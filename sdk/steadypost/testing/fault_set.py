"""``Faults``: the live, thread-safe set of fault rules a simulator obeys.

Rules are immutable values; this container remembers how often each one has
fired, so ``times=2`` rules wear out, and lets a test change the plan while
requests are in flight::

    sim.faults.add(Respond(status=429, retry_after=10))
    ...
    assert sim.faults.fired(rule) == 1
    sim.faults.clear()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from .faults import Fault, FaultRule

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
