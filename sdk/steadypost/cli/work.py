"""``steadypost resume`` and ``steadypost verify``: finish what earlier runs left."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from steadypost.cli import dryrun, hints, joining
from steadypost.cli.app import App, CliError
from steadypost.cli.batch import Batch, Worker, bytes_sent, summary
from steadypost.cli.exitcodes import ExitCode, for_posts, help_text
from steadypost.cli.options import (
    batch_options,
    chunk_size_option,
    common_options,
    header_option,
    json_option,
    pass_app,
    wait_options,
)
from steadypost.cli.output import file_label, when
from steadypost.cli.rideout import RideOut, interrupted
from steadypost.cli.sites import Sites
from steadypost.models import UPLOADABLE, Post, PostState
from steadypost.origins import origin_of


def _chosen(
    app: App, refs: Sequence[str], everything: bool, ride: RideOut
) -> tuple[list[Post], list[Post]]:
    """The posts ``resume`` works on (the named ones, or those due) and those left for later.

    While riding out (not ``--no-wait``), a post whose next try comes before the command's
    deadline is worked on too, after the due ones: the command waits for its time.
    """
    if refs:
        return [app.find_post(ref) for ref in refs], []
    now = app.now()
    due_now = app.journal.due(now=now)  # also hands over posts whose uploader's process is gone
    due = [p for p in due_now if p.state in UPLOADABLE]
    due_ids = {p.post_id for p in due}
    later = [p for p in app.journal.list(state=PostState.WAITING) if p.post_id not in due_ids]
    left = joining.around_resume(app, due_now, due_ids)  # unfinished too: never exit 0 for them
    if everything:
        return due + later, left
    soon = sorted((p for p in later if ride.rides(p)), key=lambda p: p.next_attempt_ts or now)
    due += soon
    later = [p for p in later if p not in soon]
    if later:
        first = min(p.next_attempt_ts or now for p in later)
        app.note(
            f"{len(later)} post(s) wait for their next try (the earliest at {when(first, now)}); "
            "`steadypost resume --all` tries them now"
        )
    return due, later + left


def _skip(app: App, post: Post, sites: Sites) -> bool:
    if post.state not in UPLOADABLE:
        hint = " (`steadypost verify` checks it)" if post.state is PostState.UNCONFIRMED else ""
        app.note(f"post {post.post_id} is {post.state.value}: nothing to upload{hint}")
        return True
    if sites.foreign(post.endpoint):
        app.warn(
            f"post {post.post_id} is for {origin_of(post.endpoint)}, not this profile's site; "
            "skipped so your credentials stay with their site (use --profile for that site)"
        )
        return True
    if _needs_token(app, post, sites):
        app.warn(
            f"post {post.post_id} ({post.platform}) needs an access token and no profile has "
            f"one for {origin_of(post.endpoint)}: skipped, it waits (`steadypost login "
            f"--profile {post.platform}` saves one)"
        )
        return True
    return False


def _needs_token(app: App, post: Post, sites: Sites) -> bool:
    """A post whose platform needs a token that no profile gives its site (sending it would
    only fail it for want of our own configuration)."""
    from steadypost.cli.config import platform_info

    if "token_provider" in app.runtime.uploader_options or sites.has_token(post.endpoint):
        return False
    try:
        return platform_info(post.platform).needs_token
    except Exception:  # a platform this version does not list: let the upload say so
        return False


def _sites(app: App, **flags: Any) -> Sites:
    from steadypost.cli.config import ConfigError
    from steadypost.cli.sites import load_sites

    try:
        sites = load_sites(app.profile, **flags)
    except ConfigError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    for warning in sites.main.warnings:
        app.warn(warning)
    return sites


@click.command(epilog=help_text(), short_help="Go on with posts an earlier run left.")
@click.argument("post_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True,
              help="Also posts whose next try is later (the server asked to wait).")  # fmt: skip
@header_option
@chunk_size_option
@wait_options
@batch_options
@json_option
@common_options
@pass_app
def resume(
    app: App, post_ids: tuple[str, ...], everything: bool,
    headers: tuple[tuple[str, str], ...], chunk_size: int | None,
    wait_up_to: float, no_wait: bool, jobs: int, bwlimit: float | None, dry_run: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Go on with posts that an earlier run left: queued, waiting or interrupted.

    Without POST_IDs, every post whose time has come (its wait is over),
    at once any post whose uploading process is gone (`kill -9`, a crash, a
    reboot), and those whose next try comes within --wait-up-to: like
    `upload`, resume rides out an outage at the pace of the platform's
    circuit breaker, with a countdown, for up to --wait-up-to (30 minutes)
    without progress; --no-wait takes only the posts due now and gives up at
    once. -j 4 resumes four posts at a time (each site at its own pace);
    --bwlimit caps the speed; --dry-run says what it would take up, and
    sends nothing. The exit code is 0 only when nothing is left to do: 4
    while any post still waits or another steadypost process is uploading
    it, 3 while a due post is unconfirmed.
    Uploads continue from the server's offset. The token comes from the
    profile or $STEADYPOST_TOKEN (the journal never holds one). Ctrl-C
    keeps every post resumable and exits 130.

    \b
    Examples:
      steadypost resume
      steadypost resume 01JD3K9Z
      steadypost resume -j 4 --bwlimit 8M
      steadypost resume --dry-run
      steadypost resume --wait-up-to 2h
      steadypost resume --no-wait --json          # from cron: never blocks
      steadypost --profile travel resume --all
    """
    sites = _sites(app, headers=headers, chunk_size=chunk_size)
    ride = RideOut.from_options(app, wait_up_to=wait_up_to, no_wait=no_wait)
    if dry_run:
        dryrun.plan_resume(app, *dryrun.due_posts(app, post_ids), as_json=as_json)
        return
    app.limit_bandwidth(bwlimit, jobs=jobs)
    chosen, later = _chosen(app, post_ids, everything, ride)
    before = {p.post_id: p.bytes_sent for p in chosen}
    started: list[Post] = []
    start = app.now()

    def work(post: Post, worker: Worker) -> Post:
        started.append(post)
        if _skip(app, post, sites):
            return post
        tracker = display.track(file_label(post), post.identity.size)
        uploader = app.uploader(sites.headers_for(post.endpoint), worker=worker.key)
        post = worker.ride.upload(uploader, post, chunk_size=sites.site(post.endpoint).chunk_size,
                                  tracker=tracker, wait_first=not (post_ids or everything))
        tracker.finish(post)
        joining.busy_elsewhere(app, post, uploader.owner)
        return post

    batch: Batch[Post] = Batch(app, jobs, ride.wait_s)
    try:
        with app.display() as display:
            results = batch.run(chosen, work)
    except KeyboardInterrupt:
        left = len(chosen) - len(started)
        after = f"{left} more post(s) not started; they wait in the journal" if left else ""
        interrupted(app, started, as_json=as_json, after=after,
                    headers_for=lambda p: sites.headers_for(p.endpoint))  # fmt: skip
    if not chosen:
        app.note("nothing to resume")
    app.print_posts(results, as_json=as_json)
    if results:
        now = [app.journal.get(p.post_id) for p in results]
        app.note(summary(results, sent=bytes_sent(before, now), seconds=app.now() - start))
    for post in results:
        hints.refused(app, sites.site(post.endpoint), [post])
    raise click.exceptions.Exit(for_posts([*results, *later]))


@click.command(epilog=help_text())
@click.option("--all", "everything", is_flag=True,
              help="Check every unconfirmed post now, not only those whose time has come.")
@header_option
@json_option
@common_options
@pass_app
def verify(app: App, everything: bool, headers: tuple[tuple[str, str], ...], as_json: bool) -> None:
    """Ask the platform whether unconfirmed posts went through.

    A post is unconfirmed when every byte went out but no answer said whether
    it arrived. steadypost checks it 15-30 minutes later instead of posting it
    twice: processed -> confirmed; still processing -> checked again later;
    not processed -> queued again (`steadypost resume` sends it); failed ->
    failed. This runs the checks that are due now (all of them with --all).
    The exit code is 3 while any post stays unconfirmed.

    \b
    Examples:
      steadypost verify
      steadypost verify --all --json
    """
    sites = _sites(app, headers=headers)
    now = app.now()
    pending = app.journal.list(state=PostState.UNCONFIRMED)
    due = [p for p in pending if everything or (p.next_attempt_ts or now) <= now]
    foreign = sorted({origin_of(p.endpoint) for p in due if sites.foreign(p.endpoint)})
    if foreign:
        raise CliError(
            f"unconfirmed posts at {', '.join(foreign)} are due, but no profile has "
            "credentials for that site, and others' must not be sent there: use the "
            "--profile of that site", ExitCode.ERROR,
        )  # fmt: skip
    checked: list[Post] = []
    by_site: dict[str, list[str]] = {}
    for post in due:  # each site's checks with its own credentials
        by_site.setdefault(origin_of(post.endpoint), []).append(post.post_id)
    for ids in by_site.values():
        endpoint = app.journal.get(ids[0]).endpoint
        uploader = app.uploader(sites.headers_for(endpoint))
        checked += uploader.verify_due(all=True, post_ids=ids)
    done = {p.post_id for p in checked}
    waiting = [p for p in pending if p.post_id not in done]
    if not checked:
        app.note("nothing to verify now" if pending else "no unconfirmed posts")
    if waiting:
        first = min(p.next_attempt_ts or now for p in waiting)
        app.note(f"{len(waiting)} post(s) not checked yet; the next check is at {when(first, now)}")
    app.print_posts(checked, as_json=as_json)
    for post in checked:
        hints.refused(app, sites.site(post.endpoint), [post])
    raise click.exceptions.Exit(for_posts([*checked, *waiting]))
