"""``steadypost daemon``: posting in the background (``steadypost status`` looks at it)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from steadypost.cli import targets
from steadypost.cli.app import App, CliError
from steadypost.cli.config import ConfigError
from steadypost.cli.exitcodes import ExitCode, for_posts
from steadypost.cli.options import (
    DURATION,
    common_options,
    pass_app,
    post_options,
    to_option,
)
from steadypost.cli.sites import Sites, load_sites
from steadypost.daemon import Daemon, DaemonOptions
from steadypost.daemon.heartbeat import DEFAULT_HEARTBEAT_S, DEFAULT_LEASE_S
from steadypost.daemon.lock import DaemonRunningError
from steadypost.daemon.logs import make_handler
from steadypost.daemon.schedule import DEFAULT_CONCURRENCY, DEFAULT_POLL_S
from steadypost.daemon.watch import DEFAULT_SETTLE_S
from steadypost.lifecycle.group import Target

log = logging.getLogger("steadypost.daemon")

DAEMON_EPILOG = """
\b
Signals:
  SIGTERM, SIGINT (Ctrl-C)  stop: uploads are checkpointed, exit within 5 s
  SIGHUP                    reload the profile (endpoint, token, chunk size)
\b
Run it as a service: examples/steadypost.service (systemd, Linux) and
examples/com.steadypost.daemon.plist (launchd, macOS); for a fleet on one
PostgreSQL journal, examples/steadypost-worker@.service (N workers a host).
`steadypost status` shows the workers and what they are doing.
\b
Exit codes: 0 when stopped by a signal. With --once, how the posts it worked
on ended: 0 confirmed, 3 some unconfirmed, 4 some waiting, 5 some failed.
1 when another daemon already runs on this SQLite journal (its pid is named),
or a live worker of this --name on this PostgreSQL one.
"""




def _setup_logging(app: App, log_json: bool) -> None:
    logger = logging.getLogger("steadypost")
    logger.handlers[:] = [make_handler(sys.stderr, json_lines=log_json)]
    logger.setLevel(logging.DEBUG if app.debug else logging.INFO)


@click.command(epilog=DAEMON_EPILOG, short_help="Post in the background: queue, verify, watch.")
@click.option("--once", is_flag=True,
              help="Do what is due now (uploads, checks, complete files), then exit. For cron.")
@click.option("--watch", "watch", multiple=True, metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Post every complete new video in this folder (repeatable). A sidecar "
              "NAME.json beside a video gives its caption and metadata.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 16), default=DEFAULT_CONCURRENCY,
              show_default=True, help="Uploads at once.")
@post_options
@to_option
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=DEFAULT_POLL_S,
              show_default=True, metavar="SECONDS",
              help="Look for new posts and files at least this often.")
@click.option("--settle", type=click.FloatRange(min=0), default=DEFAULT_SETTLE_S,
              show_default=True, metavar="SECONDS",
              help="A watched file is complete once unchanged for this long.")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line on stderr.")
@click.option("--name", metavar="NAME", default=None,
              help="This worker's name on the journal, for `steadypost status` (default: "
              "HOST-PID). Live workers of one journal have different names.")
@click.option("--lease", type=DURATION, default=f"{DEFAULT_LEASE_S:g}s", show_default=True,
              metavar="DURATION", help="A post this worker claimed is another's once it has not "
              "heard from this one for this long (a worker on another host died or froze).")
@click.option("--heartbeat", type=DURATION, default=f"{DEFAULT_HEARTBEAT_S:g}s",
              show_default=True, metavar="DURATION",
              help="How often the worker renews its leases and says it is alive.")
@common_options
@pass_app
def daemon(
    app: App, once: bool, watch: tuple[Path, ...], concurrency: int, endpoint: str | None,
    headers: tuple[tuple[str, str], ...], metadata: tuple[tuple[str, str], ...],
    chunk_size: int | None, to: tuple[str, ...], poll_interval: float, settle: float,
    log_json: bool, name: str | None, lease: float, heartbeat: float,
) -> None:  # fmt: skip
    """Upload queued posts in the background, check unconfirmed ones on time.

    Posts added with `steadypost add` (or by your own tools) are picked up
    within a few seconds and uploaded when their time comes; waiting posts
    are tried again when the server said to; unconfirmed posts are checked
    at their time. Stop it any time: it goes on where it left off, even
    after kill -9 or a reboot. One daemon runs per SQLite journal; a
    PostgreSQL journal (--journal postgresql://...) takes any number, on
    any hosts, each uploading the posts whose files it can read (see the
    README, "When one machine is not enough").

    With --watch, a video copied or exported into the folder is posted once
    it is complete (unchanged for --settle seconds); hidden files, .part,
    .tmp and .crdownload files are left alone, and each file is posted
    once, also across restarts.

    The token and endpoint come from your profile or $STEADYPOST_TOKEN /
    $STEADYPOST_ENDPOINT, as for `steadypost upload`; watched files are
    posted there, with the profile's platform. With --to tiktok,youtube each
    watched video gets one post per destination, grouped, each with the
    token of its own profile; a sidecar's "platforms": ["youtube"] names
    the destinations of its one video instead. Posts of any platform
    (`steadypost add --platform tiktok ...`) are resumed and checked with
    the platform they were added with; a profile with `platform = "tiktok"`
    gives the token for TikTok's API. The token goes only to its site; a queued post
    for another site is sent with the credentials of the profile whose
    endpoint is on that site (and left alone if there is none).
    Log lines go to stderr (without timestamps under systemd, which adds
    its own).

    \b
    Examples:
      steadypost daemon
      steadypost --profile travel daemon --watch ~/Videos/ToPost
      steadypost daemon --watch ~/Videos/ToPost --to tiktok,youtube,instagram
      steadypost daemon --once            # from cron: do what is due, exit
      steadypost daemon -j 4 --log-json
      steadypost daemon --journal postgresql://me@db/posts --name web-1 -j 4
      kill -HUP <pid>                     # after editing config.toml
    """
    _setup_logging(app, log_json)

    if to:
        targets.refuse_one_site(("--endpoint", endpoint), ("--header", headers))
    wanted = targets.names(to)

    def load() -> Sites:
        return _watch_sites(app, wanted, endpoint=endpoint, headers=headers, metadata=metadata,
                            chunk_size=chunk_size)  # fmt: skip

    try:
        settings = load()
    except ConfigError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    if watch and not settings.to:
        raise CliError("--watch needs somewhere to post new files: pass --endpoint URL or "
                       "--to NAMES, set STEADYPOST_ENDPOINT, or put endpoint in your profile",
                       ExitCode.USAGE)  # fmt: skip
    if not 0 < heartbeat < lease:
        raise CliError(f"--heartbeat ({heartbeat:g} s) must be shorter than --lease "
                       f"({lease:g} s): leases are renewed by the heartbeat", ExitCode.USAGE)
    options = DaemonOptions(concurrency=concurrency, poll_s=poll_interval, watch=watch,
                            settle_s=settle, once=once, name=name, lease_s=lease,
                            heartbeat_s=heartbeat)  # fmt: skip
    first = [settings]  # the daemon's first call gets these; each reload reads the files again
    runner = Daemon(app.journal, lambda: first.pop() if first else load(), options=options,
                    clock=app.runtime.clock, uploader_options=app.runtime.uploader_options)
    try:
        results = runner.run()
    except DaemonRunningError as exc:
        raise CliError(str(exc), ExitCode.ERROR) from None
    raise click.exceptions.Exit(for_posts(results) if once else ExitCode.OK)


def _watch_sites(
    app: App, wanted: Sequence[str], *, endpoint: str | None,
    headers: tuple[tuple[str, str], ...], metadata: tuple[tuple[str, str], ...],
    chunk_size: int | None,
) -> Sites:  # fmt: skip
    """The sites the daemon serves, and where its watched files go (``--to`` or the profile)."""

    sites = load_sites(app.profile, endpoint=endpoint, headers=headers, metadata=metadata,
                       chunk_size=chunk_size)  # fmt: skip

    def resolve(names: Sequence[str]) -> list[targets.Destination]:
        dests = targets.resolve_all(app, names, metadata=metadata, chunk_size=chunk_size)
        targets.require_tokens(dests, several=True)
        return dests

    if wanted:
        dests = resolve(wanted)
    elif sites.main.endpoint:
        dests = [targets.single(app, sites.main, sites.main.endpoint)]
    else:
        dests = []

    def by_names(names: Sequence[str]) -> list[Target]:
        try:
            return [Target(d.adapter, d.url) for d in resolve(names)]
        except CliError as exc:
            raise ValueError(str(exc)) from None

    # A --to destination's credentials go with its posts (the main profile's are there already).
    extra = tuple(d.settings for d in dests if d.headers) if wanted else ()
    return replace(sites, others=sites.others + extra,
                   to=tuple(Target(d.adapter, d.url) for d in dests),
                   resolve_names=by_names)  # fmt: skip


__all__ = ["daemon"]
