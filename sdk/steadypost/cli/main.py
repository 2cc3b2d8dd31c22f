"""The ``steadypost`` command: the group, its global options and error handling.

Every error becomes one clear line on stderr and an exit code from
:class:`~steadypost.cli.exitcodes.ExitCode`; ``--debug`` (or
``STEADYPOST_DEBUG=1``) shows the traceback instead. Ctrl-C exits 130 and
leaves every post resumable.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import click

from steadypost import __version__
from steadypost.cli.app import App, CliError, Runtime
from steadypost.cli.exitcodes import ExitCode, help_text
from steadypost.cli.options import common_options
from steadypost.errors import FileProblemError, PostNotFoundError, SteadypostError

_USAGE_ERRORS = (FileProblemError, PostNotFoundError)
_CONTEXT = {"help_option_names": ["-h", "--help"]}

#: Every command: where it is, and its line in ``steadypost --help``. A command's module
#: is imported when it runs, so ``steadypost --help`` and ``steadypost list`` do not load
#: httpx, rich and the platform adapters (tests/cli keep these lines equal to the commands').
COMMANDS: dict[str, tuple[str, str]] = {
    "add": ("upload:add", "Put videos in the journal without uploading them yet."),
    "cancel": ("posts:cancel", "Cancel posts; delete their uploads on the server."),
    "daemon": ("daemon:daemon", "Post in the background: queue, verify, watch."),
    "demo": ("demo:demo", "Rehearse an outage on a simulated platform."),
    "list": ("posts:list_posts", "List the posts in the journal, oldest first."),
    "login": ("login:login", "Save an endpoint and its token (the token in the OS keyring)."),
    "logout": ("login:logout", "Forget a profile's token (from the OS keyring)."),
    "platforms": ("platforms:platforms",
                  "List the platforms steadypost posts to, and what each supports."),
    "report": ("report:report", "Write the evidence of posts that hit trouble."),
    "resume": ("work:resume", "Go on with posts an earlier run left."),
    "show": ("posts:show", "Show one post and its timeline."),
    "status": ("status:status", "Is the daemon running? What is queued, due, failing?"),
    "upload": ("upload:upload", "Upload videos now, with a progress bar per file."),
    "verify": ("work:verify", "Ask the platform whether unconfirmed posts went through."),
}  # fmt: skip


def load_command(name: str) -> click.Command:
    """Import the command ``name`` (a key of :data:`COMMANDS`)."""
    where, attr = COMMANDS[name][0].split(":")
    command = getattr(importlib.import_module(f"steadypost.cli.{where}"), attr)
    assert isinstance(command, click.Command)
    return command


class SteadypostGroup(click.Group):
    """A click group that loads its commands on use and turns exceptions into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their lines from :data:`COMMANDS`, without importing them."""
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx) if name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


@click.group(cls=SteadypostGroup, epilog=EPILOG, context_settings=_CONTEXT,
             invoke_without_command=True)
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
    if ctx.invoked_subcommand is None:  # `steadypost` alone: the help, and exit 0
        click.echo(ctx.get_help())
        ctx.exit(ExitCode.OK)
    app = ctx.ensure_object(App)
    if os.environ.get("STEADYPOST_DEBUG") == "1":
        app.set_debug(True)
    app.setup_logging()
    ctx.call_on_close(app.close)


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
