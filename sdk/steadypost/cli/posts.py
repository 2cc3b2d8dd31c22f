"""``steadypost list``, ``show`` and ``cancel``: look at the journal, and take a post back."""

from __future__ import annotations

from collections.abc import Sequence

import click

from steadypost.cli.app import App, CliError
from steadypost.cli.exitcodes import ExitCode, for_posts
from steadypost.cli.options import common_options, header_option, json_option, pass_app
from steadypost.cli.output import (
    STATE_STYLE,
    brief,
    event_record,
    file_label,
    post_record,
    print_json,
    print_post_details,
    print_timeline,
    share,
    size,
    when,
)
from steadypost.cli.output import table as print_table
from steadypost.cli.term import Term
from steadypost.models import Post, PostState

STATES = [state.value for state in PostState]
HEADER = ["POST ID", "STATE", "SIZE", "SENT", "UPDATED", "FILE", "STATUS"]
MIN_ID = 12


def short_ids(ids: Sequence[str], *, at_least: int = MIN_ID) -> list[str]:
    """The shortest beginnings (``at_least`` long) that tell these ids apart.

    ``steadypost show`` and the other commands take any unique beginning of an id.
    """
    n = at_least
    while n < max((len(i) for i in ids), default=0) and len({i[:n] for i in ids}) < len(set(ids)):
        n += 1
    return [i[:n] for i in ids]


def list_rows(posts: Sequence[Post], now: float, *, ids: Sequence[str] | None = None) -> list[
        list[str]]:  # fmt: skip
    ids = ids or [p.post_id for p in posts]
    return [
        [pid, p.state.value, size(p.identity.size), f"{share(p)}%", when(p.updated_at, now),
         file_label(p), brief(p, now)]
        for pid, p in zip(ids, posts, strict=True)
    ]  # fmt: skip


STATUS_KEPT = 30
"""The STATUS characters a narrow table keeps before it gives up columns (the rest is cut)."""


def _width(rows: Sequence[Sequence[str]], columns: Sequence[int]) -> int:
    last = len(HEADER) - 1
    return sum(min(max(len(r[i]) for r in rows), STATUS_KEPT if i == last else 10**6)
               for i in columns) + 2 * (len(columns) - 1)  # fmt: skip


def print_list(term: Term, posts: Sequence[Post], now: float) -> None:
    """The ``list`` table, as of ``now``; on a terminal it fits its width.

    Narrower than the table, it gives up in turn: the ids' common tail (each stays a
    unique beginning, which every command takes), the UPDATED and SIZE columns, the
    middle of long file names; last, the end of the STATUS column.
    """
    states = {s.value: STATE_STYLE[s] for s in PostState}
    rows = list_rows(posts, now)
    columns = list(range(len(HEADER)))
    width = term.width
    if width is not None and _width([HEADER, *rows], columns) > width:
        rows = list_rows(posts, now, ids=short_ids([p.post_id for p in posts]))
        for dropped in (4, 2):  # UPDATED, then SIZE
            if _width([HEADER, *rows], columns) <= width:
                break
            columns.remove(dropped)
    header = [HEADER[i] for i in columns]
    kept = [[row[i] for i in columns] for row in rows]
    print_table(
        term, header, kept, shrink=(header.index("FILE"),), keep_last=STATUS_KEPT,
        styles=lambda row: [states.get(cell) if n == 1 else None for n, cell in enumerate(row)],
    )  # fmt: skip


@click.command("list")
@click.option("--state", "states", type=click.Choice(STATES), multiple=True,
              help="Only posts in this state (repeatable).")  # fmt: skip
@click.option("--group", metavar="ID",
              help="Only the posts of one video to several platforms (upload --to); the id "
              "or its beginning, as `steadypost show` prints it.")  # fmt: skip
@json_option
@common_options
@pass_app
def list_posts(app: App, states: tuple[str, ...], group: str | None, as_json: bool) -> None:
    """List the posts in the journal, oldest first.

    A post of a group (one video to several platforms, `upload --to`) names
    its platform after the file: clip.mp4 (youtube).

    \b
    Examples:
      steadypost list
      steadypost list --state unconfirmed --state waiting
      steadypost list --group g-3f9a
      steadypost list --json | jq -r 'select(.state=="failed") | .file'
    """
    app.journal.end_orphaned_leases()  # a post whose uploader died does not look busy
    posts = app.journal.list(state=[PostState(s) for s in states] if states else None)
    if group is not None:
        posts = [p for p in posts if p.group is not None and p.group.startswith(group.strip())]
    if as_json:
        for post in posts:
            print_json(app.out, post_record(post))
        return
    if not posts:
        app.note("no posts" + (f" in state {', '.join(states)}" if states else "") +
                 (f" in group {group}" if group else "") + f" in {app.journal.path}")  # fmt: skip
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
    app.out.line("\ntimeline:")
    print_timeline(app.out, events)


@click.command(short_help="Cancel posts; delete their uploads on the server.")
@click.argument("post_ids", nargs=-1, required=True)
@header_option
@json_option
@common_options
@pass_app
def cancel(
    app: App, post_ids: tuple[str, ...], headers: tuple[tuple[str, str], ...], as_json: bool
) -> None:
    """Cancel posts that are not live yet, and delete their uploads on the server.

    The partial upload is deleted (tus termination) so it does not linger on
    the platform. A confirmed post cannot be cancelled: it is live. Each
    POST_ID may be shortened to any unique beginning. With several ids, every
    one that can be cancelled is, and the exit code is 1 if any could not be.

    \b
    Examples:
      steadypost cancel 01JD3K9ZQ2V7N5T8W4X6Y0B1C2
      steadypost cancel 01JD3K9Z 01JD3KA4 01JD3KB7
      steadypost cancel $(steadypost list --json | jq -r 'select(.state=="waiting") | .post_id')
      steadypost cancel 01JD3K9Z --json
    """
    posts = [app.find_post(ref) for ref in dict.fromkeys(post_ids)]  # a typo stops all, first
    settings = app.settings(headers=headers) if any(not p.state.finished for p in posts) else None
    done: list[Post] = []
    refused: list[str] = []
    for post in posts:
        if post.state is PostState.CANCELLED:
            app.note(f"post {post.post_id} was already cancelled")
        elif post.state.finished:
            refused.append(f"post {post.post_id} is {post.state.value}; only a post that is "
                           "not finished can be cancelled")  # fmt: skip
            continue
        else:
            assert settings is not None
            post = app.uploader(settings.headers_for(post.endpoint)).cancel_post(post.post_id)
            for note in _notes_since_cancelled(app, post.post_id):
                app.warn(f"{note}; the partial upload stays on the server until it expires")
        done.append(post)
    app.print_posts(done, as_json=as_json)
    if refused:
        if len(refused) == 1 and len(posts) == 1:
            raise CliError(refused[0], ExitCode.ERROR)
        for line in refused:
            click.echo(f"Error: {line}", err=True)
        raise click.exceptions.Exit(ExitCode.ERROR)
    raise click.exceptions.Exit(for_posts(done))


def _notes_since_cancelled(app: App, post_id: str) -> list[str]:
    """What the journal noted after the post was cancelled (a failed server-side delete)."""
    events = app.journal.events(post_id)
    cancelled = max(
        (i for i, e in enumerate(events) if e.kind == "state" and e.data.get("to") == "cancelled"),
        default=len(events),
    )
    return [str(e.data.get("message")) for e in events[cancelled:] if e.kind == "note"]
