"""Whose credentials a journaled post gets: the profile of its site.

A journal holds posts for many sites (``upload --to tiktok,youtube``, or
profiles used one after the other), but never a token. ``resume``,
``verify`` and the daemon therefore give each post the credentials of the
profile whose endpoint has the post's origin (its own platform's API when
the profile names none); the command's own profile (``--profile``, the
environment, the flags) counts first for its site. A post for a site no
profile has credentials for is ``foreign`` when credentials are configured:
it is left alone, never sent someone else's token.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steadypost.origins import origin_of

if TYPE_CHECKING:  # `steadypost status` loads this module and starts without the config code
    from steadypost.cli.config import Settings
    from steadypost.lifecycle.group import Target

log = logging.getLogger("steadypost")


@dataclass(frozen=True)
class Sites:
    """The command's settings, and the sites of the other profiles in config.toml.

    ``to``: where the daemon posts watched files (``--to``, else the main
    profile's site); ``resolve_names`` turns a sidecar's ``"platforms"``
    into targets the way ``--to`` does.
    """

    main: Settings
    others: tuple[Settings, ...] = ()
    to: tuple[Target, ...] = ()
    resolve_names: Callable[[Sequence[str]], Sequence[Target]] | None = field(
        default=None, compare=False, repr=False)

    def targets(self, names: Sequence[str] = ()) -> Sequence[Target]:
        if not names:
            return self.to
        if self.resolve_names is None:
            raise ValueError("destinations by name are not configured here")
        return self.resolve_names(names)

    @property
    def endpoint(self) -> str | None:
        return self.main.endpoint

    @property
    def chunk_size(self) -> int | None:
        return self.main.chunk_size

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.main.metadata

    def site(self, url: str) -> Settings:
        """The settings for a post at ``url``: the profile of its site, else the main ones."""
        origin = origin_of(url)
        for settings in (self.main, *self.others):
            if settings.endpoint and origin_of(settings.endpoint) == origin:
                return settings
        return self.main

    def headers_for(self, url: str) -> Mapping[str, str]:
        return self.site(url).headers_for(url)

    def foreign(self, url: str) -> bool:
        return self.site(url).foreign(url)

    def has_token(self, url: str) -> bool:
        """Whether an ``Authorization`` header goes to ``url``."""
        return any(k.lower() == "authorization" for k in self.headers_for(url))


def load_sites(profile: str | None, **flags: Any) -> Sites:
    """Read config.toml, the environment and the flags (``flags``: as :func:`resolve` takes).

    The ``$STEADYPOST_*`` overrides and the flags are for the command's own
    profile; the other profiles count as they are in the file. A profile that
    cannot be read (a token variable that is not set) is logged and skipped.
    """
    from steadypost.cli.config import (
        ENV_CHUNK_SIZE,
        ENV_ENDPOINT,
        ENV_PLATFORM,
        ENV_PROFILE,
        ENV_TOKEN,
        ConfigError,
        load_config,
        resolve,
    )

    overrides = (ENV_PROFILE, ENV_PLATFORM, ENV_ENDPOINT, ENV_TOKEN, ENV_CHUNK_SIZE)
    config = load_config()
    main = resolve(config, profile_name=profile, **flags)
    for warning in main.warnings:
        log.warning(warning)
    env = {k: v for k, v in os.environ.items() if k not in overrides}
    others = []
    for name in sorted(set(config.profiles) - {main.profile or ""}):
        try:
            other = resolve(config, profile_name=name, env=env)
        except ConfigError as exc:
            log.warning("profile %r is not used for its site's posts: %s", name, exc)
            continue
        if other.endpoint and other.headers:
            others.append(other)
    return Sites(main, tuple(others))


__all__ = ["Sites", "load_sites"]
