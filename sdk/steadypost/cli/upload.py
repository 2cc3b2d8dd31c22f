"""``steadypost upload`` and ``steadypost add``: put videos in the journal, and send them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from steadypost.cli import dryrun, hints, joining, targets
from steadypost.cli.app import App, CliError
from steadypost.cli.batch import Batch, Worker, bytes_sent, summary
from steadypost.cli.config import Settings
from steadypost.cli.exitcodes import ExitCode, for_posts, help_text
from steadypost.cli.options import (
    batch_options,
    common_options,
    json_option,
    pass_app,
    platform_options,
    post_options,
    to_option,
    wait_options,
)
from steadypost.cli.rideout import interrupted
from steadypost.models import Post

FILES = click.argument(
    "files", nargs=-1, required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)  # fmt: skip

CONFIG_HELP = """
\b
A profile in config.toml saves typing. The file is in steadypost's config
folder: ~/.config/steadypost/ on Linux, ~/Library/Application
Support/steadypost/ on macOS, %LOCALAPPDATA%\\steadypost\\ on Windows
($STEADYPOST_CONFIG_DIR moves it):
\b
  default_profile = "travel"
  [profiles.travel]
  endpoint = "https://uploads.example.com/files/"
  token_env = "TRAVEL_UPLOAD_TOKEN"     # or: token = "..." (chmod 600)
  chunk_size = "16MiB"
\b
  [profiles.tiktok]
  platform = "tiktok"                   # no endpoint needed: TikTok's API
  token_env = "TIKTOK_ACCESS_TOKEN"
  [profiles.tiktok.platform_options]
  privacy_level = "SELF_ONLY"
\b
$STEADYPOST_PLATFORM, $STEADYPOST_ENDPOINT, $STEADYPOST_TOKEN and
$STEADYPOST_CHUNK_SIZE override the profile; flags override both. A token is sent as
'Authorization: Bearer <token>', only to the endpoint's site, and is never
saved in the journal or printed.
"""


def _endpoint(settings: Settings) -> str:
    if settings.endpoint is None:
        raise CliError(
            f"no endpoint for platform {settings.platform}: pass --endpoint URL, set "
            "STEADYPOST_ENDPOINT, or put endpoint in a profile of config.toml",
            ExitCode.USAGE,
        )
    return settings.endpoint


def _unique(app: App, files: Sequence[Path]) -> list[Path]:
    seen: set[str] = set()
    unique = []
    for path in files:
        key = os.path.realpath(path)
        if key in seen:
            app.warn(f"{path} is given twice; it is posted once")
            continue
        seen.add(key)
        unique.append(path)
    return unique


def _metadata(settings: Settings, path: Path) -> dict[str, str]:
    return {"filename": path.name, **settings.metadata}


@click.command(epilog=CONFIG_HELP + "\n" + help_text())
@FILES
@post_options
@platform_options
@to_option
@wait_options
@batch_options
@joining.new_option
@json_option
@common_options
@pass_app
def upload(
    app: App, files: tuple[Path, ...], endpoint: str | None, headers: tuple[tuple[str, str], ...],
    metadata: tuple[tuple[str, str], ...], chunk_size: int | None,
    platform: str | None, platform_options: tuple[tuple[str, str], ...],
    to: tuple[str, ...], wait_up_to: float, no_wait: bool, jobs: int, bwlimit: float | None,
    dry_run: bool, new: bool, as_json: bool,
) -> None:  # fmt: skip
    """Upload videos now, with a progress bar per file.

    Each file becomes a post in the journal before the first byte is sent.
    When the platform fails, steadypost waits as the server asks and resumes
    from the server's offset. During an outage it rides it out: it tries
    again when the platform's circuit breaker lets a probe through (spaced
    15 s to 4 min apart, never a flood), counting down on stderr
    ("platform recovering: circuit open, next try in 42 s"), for up to
    --wait-up-to (30 minutes) without progress. --no-wait gives up at once
    instead (for scripts). At the end you get one line per post: confirmed,
    unconfirmed (checked later, it may already be live), waiting
    (`steadypost resume` or the daemon goes on) or failed, and why, then a
    summary (posts, states, bytes sent, time). Ctrl-C keeps the posts
    resumable, says how many bytes the server holds, and exits 130.

    -j 3 uploads three files at a time; each site keeps its own pace, so a
    busy site holds back only its own posts. --bwlimit caps the speed of the
    whole command. --dry-run says what would be posted and what is posted
    already, and sends nothing.

    A file is posted once per site and account: running the same upload
    again (or while the daemon has the file) joins the post it has, unless
    that one failed or was cancelled. It prints "already posted: ID
    confirmed", or goes on with the waiting post; a post that another
    steadypost process is uploading right now is left to it (exit 4).
    --new posts the file again on purpose.

    --to tiktok,youtube,instagram posts each video to several platforms: one
    post per platform, grouped (`steadypost list --group ID`), uploaded side
    by side, so one platform's outage holds back none of the others. Each
    name is a profile of config.toml, or a platform whose one profile (or,
    without one, its own API) is used; each keeps its own token (`steadypost
    login --profile NAME`).

    \b
    Examples:
      steadypost upload holiday.mp4 --endpoint https://uploads.example.com/files/
      steadypost upload day1.mp4 day2.mp4 -m caption='Day one' --chunk-size 8MiB
      steadypost upload *.mp4 -j 3 --bwlimit 4M     # three at a time, 4 MiB/s in all
      steadypost upload *.mp4 --dry-run              # what would be posted
      steadypost upload holiday.mp4 --wait-up-to 2h  # ride out a long outage
      steadypost upload clip.mp4 --no-wait --json    # scripts: exit 4 at once
      STEADYPOST_TOKEN=... steadypost upload clip.mp4 -e https://up.example/files/
      steadypost upload clip.mp4 --json | jq -r .state
      steadypost upload clip.mp4 --platform tiktok -m title='Sunset'
      steadypost upload clip.mp4 -p tiktok --platform-option mode=inbox
      steadypost upload talk.mp4 --platform vimeo -m title='My talk'
      steadypost upload clip.mp4 --new     # a second post of the same video
      steadypost upload clip.mp4 --to tiktok,youtube,instagram -m title='Sunset'
    """
    dests = _destinations(app, to, endpoint=endpoint, headers=headers, metadata=metadata,
                          chunk_size=chunk_size, platform=platform,
                          platform_options=platform_options)  # fmt: skip
    several = len(dests) > 1
    files = tuple(_unique(app, files))
    if dry_run:
        for dest in dests:
            dryrun.plan_upload(app, files, dest.url, platform=dest.platform,
                               account=dest.account, new=new, as_json=as_json)  # fmt: skip
        return
    if "token_provider" not in app.runtime.uploader_options:
        targets.require_tokens(dests, several=several)
    jobs *= len(dests)  # a video's posts to several platforms go side by side
    app.limit_bandwidth(bwlimit, jobs=jobs)
    started: list[Post] = []
    before: dict[str, int] = {}
    start = app.now()
    groups = {path: targets.group_of(path) for path in files} if several else {}

    def work(item: tuple[Path, targets.Destination], worker: Worker) -> Post:
        path, dest = item
        uploader = app.uploader(dest.headers, worker=worker.key)
        added = uploader.add_or_join(
            path, dest.url, metadata=_metadata(dest.settings, path), platform=dest.adapter,
            new=new, group=groups.get(path),
        )  # fmt: skip
        post = added.post
        before[post.post_id] = post.bytes_sent
        started.append(post)
        if joining.joined(app, added):
            return post  # already posted: nothing to send
        tracker = display.track(targets.label(path, dest, several=several), post.identity.size)
        post = worker.ride.upload(uploader, post, chunk_size=dest.settings.chunk_size,
                                  tracker=tracker)  # fmt: skip
        tracker.finish(post)
        joining.busy_elsewhere(app, post, uploader.owner)
        return post

    def headers_for(post: Post) -> Mapping[str, str]:
        for dest in dests:
            if dest.platform == post.platform and dest.settings.headers_for(post.endpoint):
                return dest.settings.headers_for(post.endpoint)
        return {}

    items = [(path, dest) for path in files for dest in dests]
    batch: Batch[tuple[Path, targets.Destination]] = Batch(app, jobs, 0.0 if no_wait
                                                           else wait_up_to)  # fmt: skip
    try:
        with app.display() as display:
            results = batch.run(items, work)
    except KeyboardInterrupt:
        names = {os.path.realpath(p.path) for p in started}
        left = [str(f) for f in files if os.path.realpath(f) not in names]
        after = "not started, not in the journal: " + ", ".join(left) if left else ""
        interrupted(app, started, as_json=as_json, after=after, headers_for=headers_for)
    app.print_posts(results, as_json=as_json)
    app.note(summary(results, sent=bytes_sent(before, _reread(app, results)),
                     seconds=app.now() - start))  # fmt: skip
    for dest in dests:
        hints.refused(app, dest.settings, [p for p in results if p.endpoint == dest.url])
    raise click.exceptions.Exit(for_posts(results))


def _destinations(
    app: App, to: tuple[str, ...], *, endpoint: str | None,
    headers: tuple[tuple[str, str], ...], metadata: tuple[tuple[str, str], ...],
    chunk_size: int | None, platform: str | None,
    platform_options: tuple[tuple[str, str], ...],
) -> list[targets.Destination]:  # fmt: skip
    """``--to``'s destinations, or the one the profile, environment and flags name."""
    if to:
        targets.refuse_one_site(("--endpoint", endpoint), ("--header", headers),
                                ("--platform", platform), ("--platform-option", platform_options))
        return targets.resolve_all(app, targets.names(to), metadata=metadata,
                                   chunk_size=chunk_size)  # fmt: skip
    settings = app.settings(
        endpoint=endpoint, headers=headers, metadata=metadata, chunk_size=chunk_size,
        platform=platform, platform_options=platform_options,
    )  # fmt: skip
    return [targets.single(app, settings, _endpoint(settings))]


def _reread(app: App, posts: Sequence[Post]) -> list[Post]:
    """The posts as journaled now (their ``bytes_sent`` counts every request's body)."""
    return [app.journal.get(p.post_id) for p in posts]


@click.command(epilog=CONFIG_HELP)
@FILES
@post_options
@platform_options
@to_option
@joining.new_option
@json_option
@common_options
@pass_app
def add(
    app: App, files: tuple[Path, ...], endpoint: str | None, headers: tuple[tuple[str, str], ...],
    metadata: tuple[tuple[str, str], ...], chunk_size: int | None,
    platform: str | None, platform_options: tuple[tuple[str, str], ...], to: tuple[str, ...],
    new: bool, as_json: bool,
) -> None:  # fmt: skip
    """Put videos in the journal without uploading them yet.

    `steadypost resume` (or the daemon) uploads them later. Headers and
    tokens are never saved in the journal: resume takes them from your
    profile or $STEADYPOST_TOKEN, and the chunk size from the profile or
    $STEADYPOST_CHUNK_SIZE. The platform and its options are saved with each
    post. A file that already has a post for this site and account (not
    failed or cancelled) is not added again: its post is shown (--new adds
    another one on purpose). --to adds one post per platform, grouped (see
    `steadypost upload --help`).

    \b
    Examples:
      steadypost add day1.mp4 day2.mp4 --endpoint https://uploads.example.com/files/
      steadypost --profile travel add clip.mp4 -m caption='Day one'
      steadypost add clip.mp4 --platform tiktok --platform-option privacy_level=SELF_ONLY
      steadypost add clip.mp4 --to tiktok,youtube
      steadypost resume
    """
    dests = _destinations(app, to, endpoint=endpoint, headers=headers, metadata=metadata,
                          chunk_size=chunk_size, platform=platform,
                          platform_options=platform_options)  # fmt: skip
    several = len(dests) > 1
    for dest in dests:
        missing = targets.token_missing(dest, several=several)
        if missing:
            app.warn(f"{missing} before `steadypost resume`")
    if headers:
        app.warn("--header values are not saved; `steadypost resume` takes headers from "
                 "the profile or $STEADYPOST_TOKEN")  # fmt: skip
    if chunk_size:
        app.warn("--chunk-size is not saved; `steadypost resume` takes it from the profile "
                 "or $STEADYPOST_CHUNK_SIZE")  # fmt: skip
    uploader = app.uploader({})
    posts = []
    for path in _unique(app, files):
        group = targets.group_of(path) if several else None
        for dest in dests:
            added = uploader.add_or_join(
                path, dest.url, metadata=_metadata(dest.settings, path), platform=dest.adapter,
                new=new, group=group,
            )  # fmt: skip
            joining.joined(app, added)
            posts.append(added.post)
    app.print_posts(posts, as_json=as_json)
