"""The exit codes of the ``steadypost`` command, for scripts that run it.

A script usually asks one question: is every post live? ``0`` says yes. The
other codes say what is left to do, from the mildest to the worst:

==== =============== ==============================================================
code name            meaning
==== =============== ==============================================================
0    OK              every post the command dealt with is confirmed (or cancelled)
1    ERROR           the command could not do its job (journal unreadable, server
                     unreachable while cancelling, an unexpected error)
2    USAGE           bad input: a missing file, a bad URL or size, an unknown post
                     id or profile, a broken config file (click's own code), or an
                     endpoint that does not answer like the platform (nothing
                     listening, https to an http port, a web server that is not tus)
3    UNCONFIRMED     some posts are unconfirmed: probably live, checked later
4    WAITING         some posts wait for their next try (server busy or down), or
                     another steadypost process is uploading them right now
5    FAILED          some posts failed for good (rejected, file changed, 4xx)
130  INTERRUPTED     stopped by Ctrl-C; the post is saved and ``resume`` goes on
==== =============== ==============================================================

When posts end in different states, the worst one gives the code
(failed > waiting > unconfirmed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steadypost.models import Post


class ExitCode(enum.IntEnum):
    """What ``steadypost`` exits with; see the module docstring."""

    OK = 0
    ERROR = 1
    USAGE = 2
    UNCONFIRMED = 3
    WAITING = 4
    FAILED = 5
    INTERRUPTED = 130


_MEANING = {
    ExitCode.OK: "every post is confirmed",
    ExitCode.ERROR: "the command could not do its job",
    ExitCode.USAGE: "bad input (file, URL, size, post id, config, a wrong endpoint)",
    ExitCode.UNCONFIRMED: "some posts are unconfirmed (checked later)",
    ExitCode.WAITING: "some posts wait (or another process is uploading them)",
    ExitCode.FAILED: "some posts failed",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); resumable",
}

_BY_STATE = {  # by PostState value: `steadypost --help` needs no models
    "confirmed": ExitCode.OK,
    "cancelled": ExitCode.OK,
    "unconfirmed": ExitCode.UNCONFIRMED,
    "queued": ExitCode.WAITING,
    "waiting": ExitCode.WAITING,
    "uploading": ExitCode.WAITING,
    "failed": ExitCode.FAILED,
}
_SEVERITY = (ExitCode.OK, ExitCode.UNCONFIRMED, ExitCode.WAITING, ExitCode.FAILED)


def for_posts(posts: Iterable[Post]) -> ExitCode:
    """The code for a set of posts: the worst of their states (none: ``OK``).

    A post that failed because its endpoint does not answer like the platform
    (a wrong URL, not an outage) is bad input: ``USAGE``, before anything else.
    """
    posts = list(posts)
    if any(p.state.value == "failed" and p.extra.get("failed_because") == "configuration"
           for p in posts):  # fmt: skip
        return ExitCode.USAGE
    codes = [_BY_STATE[post.state.value] for post in posts]
    return max(codes, key=_SEVERITY.index, default=ExitCode.OK)


def help_text() -> str:
    """The exit codes as a ``--help`` block (click keeps ``\\b`` blocks as written)."""
    lines = [f"  {int(code):>3}  {_MEANING[code]}" for code in ExitCode]
    return "\b\nExit codes:\n" + "\n".join(lines)
