"""The ``steadypost`` command line: upload videos, watch the journal, rehearse an outage.

Run ``steadypost --help`` (or ``python -m steadypost --help``). One module per
command group: :mod:`.upload` (upload, add), :mod:`.posts` (list, show,
cancel), :mod:`.work` (resume, verify), :mod:`.report`, :mod:`.demo`; shared
pieces in :mod:`.app`, :mod:`.config`, :mod:`.options`, :mod:`.output`,
:mod:`.progress` and :mod:`.exitcodes`. The commands use only steadypost's
public API.
"""

from steadypost.cli.exitcodes import ExitCode
from steadypost.cli.main import cli, main

__all__ = ["ExitCode", "cli", "main"]
