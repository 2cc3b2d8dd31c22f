"""``steadypost platforms``: where steadypost can post, and how each platform is handled."""

from __future__ import annotations

import dataclasses

import click

from steadypost.cli.app import App
from steadypost.cli.options import common_options, pass_app
from steadypost.cli.output import print_json
from steadypost.cli.output import table as print_table
from steadypost.platforms import available


@click.command(short_help="List the platforms steadypost posts to, and what each supports.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per platform on stdout instead of text.")  # fmt: skip
@common_options
@pass_app
def platforms(app: App, as_json: bool) -> None:
    """List the platforms `--platform NAME` accepts, and what each supports.

    For each: whether it needs an access token, the API it posts to when no
    endpoint is given, the options `--platform-option KEY=VALUE` (or a
    profile's platform_options) take, how the bytes travel, how the post is
    published, how an unconfirmed post is settled, and where steadypost's
    knowledge of the platform comes from.

    \b
    Examples:
      steadypost platforms
      steadypost platforms --json | jq -r .name
      steadypost upload clip.mp4 --platform tiktok --platform-option mode=inbox
    """
    infos = available()
    if as_json:
        for info in infos:
            record = dataclasses.asdict(info)
            record["options"] = list(info.options)
            print_json(app.out, record)
        return
    rows = [
        [info.name, "yes" if info.needs_token else "no",
         info.default_endpoint or "(your server's URL)",
         ", ".join(info.options) or "-", info.title]
        for info in infos
    ]  # fmt: skip
    print_table(app.out, ["PLATFORM", "TOKEN", "DEFAULT ENDPOINT", "OPTIONS", "TITLE"], rows)
    for info in infos:
        app.out.line()
        app.out.line(info.name, style="bold")
        for label, text in (
            ("bytes", info.bytes),
            ("publish", info.publish),
            ("verification", info.verification),
            ("sources", info.sources),
        ):
            app.out.line(f"  {label + ':':<14}{text}")


__all__ = ["platforms"]
