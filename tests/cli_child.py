"""The real ``steadypost`` command (``steadypost.cli.main``'s ``cli``), with short breaker periods.

    python tests/cli_child.py [--threshold N] [--open-base S] [--open-cap S] -- ARGS...

Runs ``steadypost ARGS...`` exactly as the console script does (same command group, same
error handling, the real clock, the real ``time.sleep`` that Ctrl-C interrupts), except that
the per-host circuit breaker opens after ``--threshold`` failures (default 2, not 5) for
half of ``--open-base`` up to ``--open-cap`` seconds (default 3 s, then 4-8 s) instead of
15 s to 4 min, so a real-clock outage test takes seconds. The first open period is longer
than the upload's own backoff after two failures (at most 2 s), so the circuit, not the
backoff, decides when the next request goes, as it does with the defaults.
The breaker state is kept in the journal as usual, so a later plain ``python -m steadypost``
run sees it.
"""

from __future__ import annotations

import argparse
import sys

from steadypost import BreakerOptions, HostOptions, HostRegistry
from steadypost.cli import cli
from steadypost.cli.app import Runtime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=int, default=2)
    parser.add_argument("--open-base", type=float, default=6.0)
    parser.add_argument("--open-cap", type=float, default=8.0)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    breaker = BreakerOptions(failure_threshold=ns.threshold, open_base_s=ns.open_base,
                             open_cap_s=ns.open_cap)  # fmt: skip
    runtime = Runtime(uploader_options={"hosts": HostRegistry(HostOptions(breaker=breaker))})
    try:
        cli.main(args=args, prog_name="steadypost", obj=runtime)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
