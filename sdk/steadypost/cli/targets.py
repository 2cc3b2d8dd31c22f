"""Where a command's posts go: one platform, or several with ``--to``.

``--to youtube,tiktok`` names each destination by a profile of config.toml
(its platform, endpoint, options and token), or by a platform's name: then
the one profile that posts to that platform, or, if there is none, the
platform's own API with no token. Each destination keeps its own token:
``$STEADYPOST_TOKEN``, ``$STEADYPOST_ENDPOINT``, ``$STEADYPOST_PLATFORM``
and ``--header`` name one site, so they do not go with ``--to`` (a token
for TikTok must never reach YouTube). Save each token with
``steadypost login --profile NAME``.

Each video then gets one post per destination, grouped under the video's
group id (``steadypost list --group ID``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from steadypost.cli.app import App, CliError
from steadypost.cli.config import (
    DEFAULT_PLATFORM,
    ENV_ENDPOINT,
    ENV_PLATFORM,
    ENV_PROFILE,
    ENV_TOKEN,
    ConfigError,
    Settings,
    platform_info,
    resolve,
)
from steadypost.cli.exitcodes import ExitCode
from steadypost.platforms.base import Platform

_ONE_SITE_ENV = (ENV_TOKEN, ENV_ENDPOINT, ENV_PLATFORM, ENV_PROFILE)


@dataclass(frozen=True)
class Destination:
    """One place the command posts to."""

    name: str
    """As the user named it (a ``--to`` name, or the platform's name)."""
    settings: Settings
    url: str
    adapter: Platform | None
    """``None``: plain tus."""

    @property
    def headers(self) -> Mapping[str, str]:
        return self.settings.headers_for(self.url)

    @property
    def platform(self) -> str:
        return self.adapter.name if self.adapter is not None else DEFAULT_PLATFORM

    @property
    def account(self) -> str:
        return str(self.adapter.config().get("account", "")) if self.adapter is not None else ""


def names(values: Iterable[str]) -> list[str]:
    """``--to a,b --to c`` as ``[a, b, c]``, each once, in order."""
    found: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name:
                raise CliError(f"--to {value!r}: an empty name (write --to tiktok,youtube)",
                               ExitCode.USAGE)  # fmt: skip
            if name not in found:
                found.append(name)
    return found


def single(app: App, settings: Settings, url: str) -> Destination:
    """The destination of a command without ``--to``."""
    return Destination(settings.platform, settings, url, app.platform(settings))


def resolve_all(
    app: App, wanted: Sequence[str], *, metadata: Sequence[tuple[str, str]],
    chunk_size: int | None,
) -> list[Destination]:  # fmt: skip
    """Each ``--to`` name as a destination; a usage error names what is wrong."""
    config = app.config()
    env = {k: v for k, v in os.environ.items() if k not in _ONE_SITE_ENV}
    ignored = [k for k in _ONE_SITE_ENV[:3] if os.environ.get(k)]
    if ignored:
        app.warn(f"{', '.join('$' + k for k in ignored)} name one site; --to takes each "
                 "destination's endpoint and token from its profile instead")  # fmt: skip
    found = []
    for name in wanted:
        profile: str | None
        platform: str | None
        if name in config.profiles:
            profile, platform, used = name, None, config
        else:
            platform = _platform_name(name, config.profiles)
            same = sorted(p.name for p in config.profiles.values()
                          if (p.platform or DEFAULT_PLATFORM) == platform)  # fmt: skip
            if len(same) > 1:
                raise CliError(f"--to {name}: the profiles {', '.join(same)} all post to "
                               f"{platform}; name one of them", ExitCode.USAGE)  # fmt: skip
            profile = same[0] if same else None
            used = config if same else replace(config, profiles={}, default_profile=None)
        try:
            settings = resolve(used, profile_name=profile, env=env, metadata=metadata,
                               chunk_size=chunk_size, platform=platform)  # fmt: skip
        except ConfigError as exc:
            raise CliError(f"--to {name}: {exc}", ExitCode.USAGE) from None
        for warning in settings.warnings:
            app.warn(f"--to {name}: {warning}")
        if settings.endpoint is None:
            raise CliError(f"--to {name}: no endpoint for platform {settings.platform}; put "
                           f"endpoint in profile {name!r} of {config.path}",
                           ExitCode.USAGE)  # fmt: skip
        found.append(Destination(name, settings, settings.endpoint, app.platform(settings)))
    return found


def _platform_name(name: str, profiles: Mapping[str, object]) -> str:
    try:
        return platform_info(name).name
    except ConfigError:
        known = ", ".join(sorted(profiles)) or "none"
        raise CliError(
            f"--to {name}: not a profile of config.toml (profiles: {known}) nor a platform "
            "(`steadypost platforms` lists them)", ExitCode.USAGE,
        ) from None  # fmt: skip


def refuse_one_site(*flags: tuple[str, object]) -> None:
    """With ``--to``, a flag naming one site (``("--endpoint", value)``, ...) is a usage error."""
    given = [flag for flag, value in flags if value]
    if given:
        raise CliError(f"{', '.join(given)} name one site; with --to each destination takes "
                       "them from its profile in config.toml", ExitCode.USAGE)  # fmt: skip


def require_tokens(dests: Sequence[Destination], *, several: bool) -> None:
    """A usage error naming the first destination whose platform needs a token it lacks."""
    for dest in dests:
        missing = token_missing(dest, several=several)
        if missing:
            raise CliError(missing, ExitCode.USAGE)


def token_missing(dest: Destination, *, several: bool) -> str | None:
    """What to say when ``dest``'s platform needs a token and none is configured for it."""
    if not platform_info(dest.platform).needs_token:
        return None
    if any(k.lower() == "authorization" for k in dest.headers):
        return None
    if several:
        profile = dest.settings.profile or dest.name
        return (f"--to {dest.name}: platform {dest.platform} needs an access token: run "
                f"`steadypost login --profile {profile}`")  # fmt: skip
    return (f"platform {dest.platform} needs an access token: set ${ENV_TOKEN}, "
            "or token_env in your profile")  # fmt: skip


def group_of(path: Path) -> str:
    """The group id of a video (the same for the same file, unchanged)."""
    from steadypost import snapshot_file
    from steadypost.lifecycle.group import group_id_for

    file = snapshot_file(path)
    return group_id_for(file.path, file.identity)


def label(path: Path, dest: Destination, *, several: bool) -> str:
    """How a file's progress bar is named: ``clip.mp4``, or ``clip.mp4 (youtube)``."""
    return f"{path.name} ({dest.name})" if several else path.name


__all__ = ["Destination", "group_of", "label", "names", "refuse_one_site", "require_tokens",
           "resolve_all", "single", "token_missing"]  # fmt: skip
