"""``steadypost list``, ``show`` and ``cancel``: look at the journal, and take a post back."""

from __future__ import annotations

import os
from collections.abc import Sequence

import click
from rich.console import Console

from steadypost import Post, PostState
from steadypost.cli.app import App, CliError
from steadypost.cli.exitcodes import ExitCode
from steadypost.cli.options import common_options, header_option, json_option, pass_app
from steadypost.cli.output import (
    STATE_STYLE,
    event_record,
    post_record,
    print_json,
    print_post_details,
    print_timeline,
    size,
    stamp,
    why,
)
from steadypost.cli.output import table as print_table

STATES = [state.value for state in PostState]


def list_rows(posts: Sequence[Post], now: float) -> list[list[str]]:
    return [
        [p.post_id, p.state.value, size(p.identity.size), stamp(p.updated_at)[:16],
         os.path.basename(p.path), why(p, now)]
        for p in posts
    ]  # fmt: skip


def print_list(console: Console, posts: Sequence[Post], now: float) -> None:
    """The ``list`` table."""
    header = ["POST ID", "STATE", "SIZE", "UPDATED", "FILE", "STATUS"]
    states = {s.value: STATE_STYLE[s] for s in PostState}
    print_table(
        console, header, list_rows(posts, now),
        styles=lambda row: [None, states[row[1]], None, None, None, None],
    )  # fmt: skip


@click.command("list")
@click.option("--state", "states", type=click.Choice(STATES), multiple=True,
              help="Only posts in this state (repeatable).")  # fmt: skip
@json_option
@common_options
@pass_app
def list_posts(app: App, states: tuple[str, ...], as_json: bool) -> None:
    """List the posts in the journal, oldest first.

    \b
    Examples:
      steadypost list
      steadypost list --state unconfirmed --state waiting
      steadypost list --json | jq -r 'select(.state=="failed") | .file'
    """
    app.journal.end_orphaned_leases()  # a post whose uploader died does not look busy
    posts = app.journal.list(state=[PostState(s) for s in states] if states else None)
    if as_json:
        for post in posts:
            print_json(app.out, post_record(post))
        return
    if not posts:
        app.note("no posts" + (f" in state {', '.join(states)}" if states else "") +
                 f" in {app.journal.path}")  # fmt: skip
        return
    print_list(app.out, posts, app.now())


@click.command(short_help="Show one post and its timeline.")
@click.argument("post_id")
@json_option
@common_options
@pass_app
def show(app: App, post_id: str, as_json: bool) -> None:
    """Show one post and its timeline: every request, answer, wait and state change.

    POST_ID may be shortened to any unique beginning.

    \b
    Examples:
      steadypost show 01JD3K9ZQ2V7N5T8W4X6Y0B1C2
      steadypost show 01JD3K9Z
      steadypost show 01JD3K9Z --json
    """
    post = app.find_post(post_id)
    events = app.journal.events(post.post_id)
    if as_json:
        print_json(app.out, {**post_record(post), "events": [event_record(e) for e in events]})
        return
    print_post_details(app.out, post, app.now())
    app.out.print("\ntimeline:")
    print_timeline(app.out, events)


@click.command(short_help="Cancel a post; delete its upload on the server.")
@click.argument("post_id")
@header_option
@json_option
@common_options
@pass_app
def cancel(app: App, post_id: str, headers: tuple[tuple[str, str], ...], as_json: bool) -> None:
    """Cancel a post that is not live yet, and delete its upload on the server.

    The partial upload is deleted (tus termination) so it does not linger on
    the platform. A confirmed post cannot be cancelled: it is live.

    \b
    Examples:
      steadypost cancel 01JD3K9ZQ2V7N5T8W4X6Y0B1C2
      steadypost cancel 01JD3K9Z --json
    """
    post = app.find_post(post_id)
    if post.state is PostState.CANCELLED:
        app.note(f"post {post.post_id} was already cancelled")
    elif post.state.finished:
        raise CliError(
            f"post {post.post_id} is {post.state.value}; only a post that is not finished "
            "can be cancelled", ExitCode.ERROR,
        )  # fmt: skip
    else:
        settings = app.settings(headers=headers)
        post = app.uploader(settings.headers_for(post.endpoint)).cancel_post(post.post_id)
        for note in _notes_since_cancelled(app, post.post_id):
            app.warn(f"{note}; the partial upload stays on the server until it expires")
    app.print_posts([post], as_json=as_json)


def _notes_since_cancelled(app: App, post_id: str) -> list[str]:
    """What the journal noted after the post was cancelled (a failed server-side delete)."""
    events = app.journal.events(post_id)
    cancelled = max(
        (i for i, e in enumerate(events) if e.kind == "state" and e.data.get("to") == "cancelled"),
        default=len(events),
    )
    return [str(e.data.get("message")) for e in events[cancelled:] if e.kind == "note"]
