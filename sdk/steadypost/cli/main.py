"""The ``steadypost`` command: the group, its global options and error handling.

Every error becomes one clear line on stderr and an exit code from
:class:`~steadypost.cli.exitcodes.ExitCode`; ``--debug`` (or
``STEADYPOST_DEBUG=1``) shows the traceback instead. Ctrl-C exits 130 and
leaves every post resumable.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from steadypost import FileProblemError, SteadypostError, __version__
from steadypost.cli import daemon, demo, platforms, posts, report, upload, work
from steadypost.cli.app import App, CliError, Runtime
from steadypost.cli.exitcodes import ExitCode, help_text
from steadypost.cli.options import common_options
from steadypost.journal import PostNotFoundError

_USAGE_ERRORS = (FileProblemError, PostNotFoundError)
_CONTEXT = {"help_option_names": ["-h", "--help"]}


class SteadypostGroup(click.Group):
    """A click group that turns exceptions into one line and an exit code."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:  # fmt: skip
        obj = extra.get("obj")
        if parent is None and not isinstance(obj, App):  # the test hook: obj=Runtime(...)
            extra["obj"] = App(obj if isinstance(obj, Runtime) else Runtime())
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except CliError as exc:
            click.echo(f"Error: {exc}", err=True)
            raise click.exceptions.Exit(exc.code) from None
        except BrokenPipeError:  # e.g. `steadypost list --json | head -1`: the reader left
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(ExitCode.ERROR) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted; every post is saved in the journal "
                       "(`steadypost resume` goes on)", err=True)  # fmt: skip
            raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None
        except Exception as exc:
            app = ctx.find_object(App)
            code = ExitCode.USAGE if isinstance(exc, _USAGE_ERRORS) else ExitCode.ERROR
            if app is not None and app.debug:
                traceback.print_exc()
            elif isinstance(exc, SteadypostError):
                click.echo(f"Error: {exc}", err=True)
            else:
                click.echo(f"Error: unexpected {type(exc).__name__}: {exc} "
                           "(run with --debug for details)", err=True)  # fmt: skip
            raise click.exceptions.Exit(code) from None


EPILOG = f"""
\b
Examples:
  steadypost demo
  steadypost upload holiday.mp4 --endpoint https://uploads.example.com/files/
  steadypost upload clip.mp4 --platform tiktok -m title='Sunset'
  steadypost platforms
  steadypost --profile travel upload day1.mp4 day2.mp4 -m caption='Day one'
  steadypost list --state unconfirmed
  steadypost report --since 2025-11-01 --format csv -o outage.csv

\b
Configuration: profiles in config.toml (see `steadypost upload --help`),
then STEADYPOST_PROFILE, STEADYPOST_PLATFORM, STEADYPOST_ENDPOINT, STEADYPOST_TOKEN,
STEADYPOST_CHUNK_SIZE, STEADYPOST_HOME (where the journal is), then flags.
NO_COLOR turns colours off.

{help_text()}
"""


@click.group(cls=SteadypostGroup, epilog=EPILOG, context_settings=_CONTEXT)
@click.version_option(__version__, prog_name="steadypost")
@common_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Post your videos exactly once, even while the platform is failing.

    Uploads resume from the server's offset after any failure, waits are
    polite (Retry-After obeyed), and every post is kept in a local journal, so
    a crash or Ctrl-C loses nothing. An upload whose outcome is unknown is
    marked unconfirmed and checked 15-30 minutes later instead of being posted
    twice.
    """
    app = ctx.ensure_object(App)
    if os.environ.get("STEADYPOST_DEBUG") == "1":
        app.debug = True
    app.setup_logging()
    ctx.call_on_close(app.close)


for _command in (
    upload.upload, upload.add, posts.list_posts, posts.show, work.resume, work.verify,
    posts.cancel, report.report, demo.demo, daemon.daemon, daemon.status, platforms.platforms,
):  # fmt: skip
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """The console-script entry point: run the CLI and return its exit code."""
    try:
        cli.main(args=argv, prog_name="steadypost")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.ERROR
    return ExitCode.OK


__all__ = ["App", "CliError", "Runtime", "cli", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
