"""A journaled post, from claim to settled: the post flows and their pure decisions.

:mod:`.outcome` decides (pure functions returning a :class:`~.outcome.Transition`);
the recorders apply those decisions to the journal.
"""

from .options import PostOptions
from .outcome import Context, Transition

__all__ = ["Context", "PostOptions", "Transition"]
