"""A real-socket hostile HTTP/1.1 server on 127.0.0.1 (:mod:`.server`): wire behaviours for any
answer (:mod:`.wire`) and an honest in-memory tus core twisted by named behaviours (:mod:`.tus`)."""

from steadypost.testing.hostile.server import BEHAVIOURS, HostileServer
from steadypost.testing.hostile.wire import Answer, Cut, Delay, Drip, Garbage, Reset, Silent, Wire

__all__ = [
    "BEHAVIOURS",
    "Answer",
    "Cut",
    "Delay",
    "Drip",
    "Garbage",
    "HostileServer",
    "Reset",
    "Silent",
    "Wire",
]
