"""A journaled post, from claim to settled: the post flows and their pure decisions.

:mod:`.outcome` decides (pure functions returning a :class:`~.outcome.Transition`);
the recorders apply those decisions to the journal.
"""

from steadypost.lifecycle.options import PostOptions
from steadypost.lifecycle.outcome import Context, Transition

__all__ = ["Context", "PostOptions", "Transition"]
