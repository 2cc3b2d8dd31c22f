"""What to do next when the platform refused the credentials (401, 403).

After ``upload``, ``resume`` or ``verify``, a post whose last answer was 401
or 403 gets one line on stderr saying whether a token was sent at all, where
it came from, and the next step::

    clip.mp4: the server refused the token (401 Unauthorized); it came from the OS
    keyring (profile 'travel'): run `steadypost login --profile travel` to save a new one
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from steadypost.cli.app import App
from steadypost.cli.config import ENV_TOKEN, Settings
from steadypost.models import Post, PostState

REFUSED = {401: "401 Unauthorized", 403: "403 Forbidden"}


def refused_status(app: App, post: Post) -> int | None:
    """401 or 403 if that was the post's last answer and it did not get through."""
    if post.state in (PostState.CONFIRMED, PostState.CANCELLED, PostState.UNCONFIRMED):
        return None
    for event in reversed(app.journal.events(post.post_id)):
        if event.kind == "request":
            status = event.data.get("status")
            return status if status in REFUSED else None
    return None


def login_command(settings: Settings) -> str:
    profile = settings.profile
    return f"steadypost login --profile {profile}" if profile else "steadypost login"


def refused_line(post: Post, status: int, settings: Settings) -> str:
    name = os.path.basename(post.path)
    answer = REFUSED[status]
    login = f"`{login_command(settings)}`"
    sent = settings.headers_for(post.endpoint)
    if not any(k.lower() == "authorization" for k in sent):
        whose = (f"profile {settings.profile!r} has none" if settings.profile
                 else "no profile is in use")  # fmt: skip
        return (f"{name}: the server refused the upload ({answer}) and no token was sent "
                f"({whose}, ${ENV_TOKEN} is not set): run {login} to save one")
    source = settings.token_source or "a --header"
    fix = f"run {login} to save a new one"
    if source.startswith("$"):
        fix = f"set {source.split()[0]} to a valid token, or unset it and {fix}"
    what = "token" if status == 401 else "token (it may lack a scope or access to the account)"
    return f"{name}: the server refused the {what} ({answer}); it came from {source}: {fix}"


def refused(app: App, settings: Settings, posts: Iterable[Post]) -> None:
    """One line per post the platform refused the credentials of (see the module docstring)."""
    for post in posts:
        status = refused_status(app, post)
        if status is not None:
            app.warn(refused_line(post, status, settings))


__all__ = ["refused", "refused_line", "refused_status"]
