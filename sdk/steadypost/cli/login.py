"""``steadypost login`` and ``logout``: a profile's endpoint, and its token in the OS keyring."""

from __future__ import annotations

import os
import sys

import click

from steadypost.cli import credentials
from steadypost.cli.app import App, CliError
from steadypost.cli.config import (
    ENV_TOKEN,
    ConfigError,
    load_config,
    platform_info,
    select_profile,
)
from steadypost.cli.exitcodes import ExitCode
from steadypost.cli.options import PLATFORM, URL, common_options, pass_app

DEFAULT_PROFILE = "default"


def _profile_name(app: App) -> str:
    return app.profile or DEFAULT_PROFILE


@click.command(short_help="Save an endpoint and its token (the token in the OS keyring).")
@click.option("--endpoint", "-e", type=URL, default=None,
              help="The upload endpoint (asked if not given; a platform with its own API, "
              "such as TikTok's, needs none).")  # fmt: skip
@click.option("--platform", "-p", "platform", type=PLATFORM, default=None,
              help="The profile's platform (tus, tiktok, vimeo, ...; `steadypost platforms`).")
@click.option("--token-stdin", is_flag=True,
              help="Read the token from stdin instead of asking (for scripts: "
              "`printenv TOKEN | steadypost login --token-stdin`).")  # fmt: skip
@click.option("--no-keyring", is_flag=True,
              help="Keep the token in config.toml (private to you, 0600), not the OS keyring.")
@common_options
@pass_app
def login(
    app: App, endpoint: str | None, platform: str | None, token_stdin: bool, no_keyring: bool
) -> None:
    """Save a profile: its endpoint in config.toml, its token in the OS keyring.

    Asks for the endpoint and the token (typed hidden). The token goes to the
    OS keyring (the macOS Keychain, Windows Credential Manager, the Secret
    Service of GNOME or KDE) under "steadypost" and the profile's name, and
    the profile says `token_keyring = true`; it never goes into the journal
    or a log. Where no keyring works (a server without a desktop), it goes
    into config.toml, readable only by you, and login says so. Without
    --profile the profile is "default". `steadypost logout` forgets the token.

    $STEADYPOST_TOKEN, when set, still wins over the saved token, as does
    a profile's token_env.

    \b
    Examples:
      steadypost login --profile travel
      steadypost login --profile travel -e https://uploads.example.com/files/
      steadypost login --profile tiktok --platform tiktok
      printenv TOKEN | steadypost login --profile ci -e https://up.example/f/ --token-stdin
    """
    name = _profile_name(app)
    config = load_config()
    existing = config.profiles.get(name)
    platform = platform or (existing.platform if existing else None)
    info = platform_info(platform or "tus")
    if endpoint is None and not info.default_endpoint:
        current = existing.endpoint if existing else None
        if token_stdin and current is None:
            raise CliError("--token-stdin needs --endpoint URL (stdin holds the token)",
                           ExitCode.USAGE)  # fmt: skip
        endpoint = current if token_stdin else click.prompt(
            "Endpoint", default=current, type=URL, err=True)  # fmt: skip
    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = click.prompt("Token (typing is hidden)", hide_input=True, err=True).strip()
    if not token:
        raise CliError("no token given; nothing saved", ExitCode.USAGE)
    values: dict[str, object] = {}
    if endpoint:
        values["endpoint"] = endpoint
    if platform:
        values["platform"] = info.name
    drop = ("token", "token_env", credentials.KEYRING_KEY)
    where = f"{config.path} (readable only by you)"
    if not no_keyring:
        try:
            backend = credentials.store_in_keyring(name, token)
        except credentials.KeyringUnavailableError as exc:
            app.warn(f"{exc}; the token goes into {config.path} instead (readable only by you)")
        else:
            values[credentials.KEYRING_KEY] = True
            where = f"the OS keyring ({backend}), under {credentials.SERVICE!r} / {name!r}"
    if credentials.KEYRING_KEY not in values:
        values["token"] = token
        credentials.delete_from_keyring(name)  # no stale copy left behind
    credentials.save_profile(config.path, name, values, drop=drop,
                             make_default=name == DEFAULT_PROFILE)  # fmt: skip
    target = f" for {endpoint}" if endpoint else f" for {info.name}"
    app.note(f"saved profile {name!r}{target} in {config.path}")
    app.note(f"the token is in {where}")
    if name != DEFAULT_PROFILE and config.default_profile != name:
        app.note(f"use it with `steadypost --profile {name} upload ...`")
    if os.environ.get(ENV_TOKEN):
        app.warn(f"${ENV_TOKEN} is set and is sent instead of this token; unset it to use the "
                 "saved one")  # fmt: skip


@click.command(short_help="Forget a profile's token (from the OS keyring).")
@common_options
@pass_app
def logout(app: App) -> None:
    """Forget the token of a profile: from the OS keyring, or from config.toml.

    The profile (its endpoint and other settings) stays; `steadypost login`
    gives it a token again. A token from an environment variable is not
    steadypost's to forget: unset the variable.

    \b
    Examples:
      steadypost logout --profile travel
      steadypost logout
    """
    name = _profile_name(app)
    config = load_config()
    try:
        profile = select_profile(config, name, {})
    except ConfigError:  # no such profile: there may still be a keyring entry
        profile = None
    removed = []
    try:
        if credentials.delete_from_keyring(name):
            removed.append("the OS keyring")
    except credentials.KeyringUnavailableError as exc:
        app.warn(str(exc))
    if profile is not None and (profile.token or profile.token_keyring):
        credentials.save_profile(config.path, name, {},
                                 drop=("token", credentials.KEYRING_KEY))  # fmt: skip
        if profile.token:
            removed.append(str(config.path))
    if removed:
        app.note(f"forgot the token of profile {name!r} (from {' and '.join(removed)})")
    else:
        app.note(f"profile {name!r} has no saved token")
    if profile is not None and profile.token_env:
        app.note(f"profile {name!r} also reads ${profile.token_env}; unset it to stop sending it")


__all__ = ["login", "logout"]
