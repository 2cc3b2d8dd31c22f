"""Settings for the CLI: a profile from ``config.toml``, then the environment, then flags.

The file is ``steadypost.paths.config_dir() / "config.toml"`` (on Linux
``~/.config/steadypost/config.toml``; ``$STEADYPOST_CONFIG_DIR`` moves it)::

    default_profile = "travel"

    [profiles.travel]
    endpoint = "https://uploads.example.com/files/"
    token_keyring = true                # the token is in the OS keyring (`steadypost login`)
    # token_env = "TRAVEL_UPLOAD_TOKEN" # or read it from this variable
    # token = "..."                     # or keep it here (then chmod 600 the file)
    chunk_size = "16MiB"
    headers = { "X-Channel" = "travel" }
    metadata = { "playlist" = "summer" }
    # journal = "postgresql://me@db.example.com/posts"  # a fleet's journal (default: a file)

    [profiles.tiktok]
    platform = "tiktok"                 # tus (the default), post-api, tiktok, vimeo
    token_env = "TIKTOK_ACCESS_TOKEN"   # no endpoint: the platform's own API is used
    [profiles.tiktok.platform_options]
    privacy_level = "SELF_ONLY"

The profile is ``--profile NAME``, else ``$STEADYPOST_PROFILE``, else
``default_profile``, else a profile named ``default`` if there is one.
``$STEADYPOST_PLATFORM``, ``$STEADYPOST_ENDPOINT``, ``$STEADYPOST_TOKEN`` and
``$STEADYPOST_CHUNK_SIZE`` override the profile; flags override both. The
profile's ``endpoint`` and ``platform_options`` belong to its ``platform``:
when another platform is chosen they are left out, and a platform with its
own API (TikTok, Vimeo) posts to that API unless an endpoint is given. A token becomes
``Authorization: Bearer <token>``. Credentials (the token and every
``--header``) go only to the origin of the configured endpoint; they are never
written to the journal or printed.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from steadypost.cli.credentials import KeyringUnavailableError, Token, keyring_token
from steadypost.cli.values import (
    ConfigError,
    check_endpoint,
    check_platform_options,
    parse_header,
    parse_metadata,
    parse_option,
    parse_rate,
    parse_size,
    platform_info,
)
from steadypost.origins import origin_of
from steadypost.paths import config_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

CONFIG_FILENAME = "config.toml"
ENV_PROFILE = "STEADYPOST_PROFILE"
ENV_ENDPOINT = "STEADYPOST_ENDPOINT"
ENV_TOKEN = "STEADYPOST_TOKEN"  # noqa: S105 - the variable's name, not a secret
ENV_CHUNK_SIZE = "STEADYPOST_CHUNK_SIZE"
ENV_PLATFORM = "STEADYPOST_PLATFORM"
DEFAULT_PLATFORM = "tus"

_PROFILE_KEYS = frozenset({
    "endpoint", "token", "token_env", "token_keyring", "chunk_size", "headers", "metadata",
    "platform", "platform_options", "journal",
})  # fmt: skip
_TOP_KEYS = frozenset({"default_profile", "profiles"})
_EMPTY: Mapping[str, str] = MappingProxyType({})
T = TypeVar("T")


def _empty() -> Mapping[str, str]:
    return _EMPTY


# --- the file --------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """One ``[profiles.NAME]`` table of ``config.toml``."""

    name: str
    endpoint: str | None = None
    token: str | None = field(default=None, repr=False)
    token_env: str | None = None
    token_keyring: bool = False
    """The token is in the OS keyring, under the profile's name (``steadypost login``)."""
    chunk_size: int | None = None
    headers: Mapping[str, str] = field(default_factory=_empty, repr=False)
    metadata: Mapping[str, str] = field(default_factory=_empty)
    platform: str | None = None
    platform_options: Mapping[str, str] = field(default_factory=_empty)
    journal: str | None = None  # a file, or a postgresql:// URL shared by a fleet


@dataclass(frozen=True)
class ConfigFile:
    """What ``config.toml`` says (empty when there is no file)."""

    path: Path
    exists: bool = False
    default_profile: str | None = None
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    readable_by_others: bool = False


def config_path() -> Path:
    """Where the config file is looked for."""
    return config_dir() / CONFIG_FILENAME


def _strings(where: str, value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{where} must be a table of strings, e.g. {{ key = \"value\" }}")
    return MappingProxyType(dict(value))


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false")
    return value


def _optional_str(where: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value


def _profile(name: str, table: Any, path: Path) -> Profile:
    where = f"{path}: [profiles.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - _PROFILE_KEYS)
    if unknown:
        known = ", ".join(sorted(_PROFILE_KEYS))
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {known})")
    endpoint = _optional_str(f"{where} endpoint", table.get("endpoint"))
    chunk = table.get("chunk_size")
    try:
        if endpoint is not None:
            check_endpoint(endpoint)
        chunk_size = parse_size(str(chunk)) if chunk is not None else None
        headers = dict(parse_header(f"{k}: {v}") for k, v in _strings(
            f"{where} headers", table.get("headers", {})).items())
        platform = _optional_str(f"{where} platform", table.get("platform"))
        info = platform_info(platform or DEFAULT_PLATFORM)
        options = _strings(f"{where} platform_options", table.get("platform_options", {}))
        check_platform_options(info, options)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Profile(
        name=name,
        endpoint=endpoint,
        token=_optional_str(f"{where} token", table.get("token")),
        token_env=_optional_str(f"{where} token_env", table.get("token_env")),
        token_keyring=_flag(f"{where} token_keyring", table.get("token_keyring", False)),
        chunk_size=chunk_size,
        headers=MappingProxyType(headers),
        metadata=_strings(f"{where} metadata", table.get("metadata", {})),
        platform=info.name if platform is not None else None,
        platform_options=options, journal=_optional_str(f"{where} journal", table.get("journal")),
    )  # fmt: skip


def load_config(path: Path | None = None) -> ConfigFile:
    """Read and check ``config.toml``; a missing file is an empty config."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return ConfigFile(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}; profiles go in [profiles.NAME] tables"
        )
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: 'profiles' must hold [profiles.NAME] tables")
    default = _optional_str(f"{path}: default_profile", data.get("default_profile"))
    return ConfigFile(
        path=path,
        exists=True,
        default_profile=default,
        profiles={name: _profile(name, table, path) for name, table in tables.items()},
        readable_by_others=bool(mode & (stat.S_IRGRP | stat.S_IROTH)),
    )


# --- the resolved settings -------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What a command uses: profile, then environment, then flags."""

    profile: str | None = None
    endpoint: str | None = None
    headers: Mapping[str, str] = field(default_factory=_empty, repr=False)
    metadata: Mapping[str, str] = field(default_factory=_empty)
    chunk_size: int | None = None
    warnings: tuple[str, ...] = ()
    platform: str = DEFAULT_PLATFORM
    """The platform new posts go to (a name from ``steadypost.platforms.available()``)."""
    platform_options: Mapping[str, str] = field(default_factory=_empty)
    token_source: str | None = None
    """Where the ``Authorization`` sent to the endpoint came from, in words; ``None``: none."""

    def headers_for(self, url: str) -> Mapping[str, str]:
        """The headers for a post at ``url``: none unless it is at the endpoint's origin.

        With no endpoint configured, the headers go to each post's own endpoint
        (the one the user typed when adding it).
        """
        if self.endpoint is None or origin_of(url) == origin_of(self.endpoint):
            return self.headers
        return _EMPTY

    def foreign(self, url: str) -> bool:
        """True if credentials are configured but not for ``url``'s origin."""
        return bool(self.headers) and not self.headers_for(url)


def select_profile(config: ConfigFile, name: str | None, env: Mapping[str, str]) -> Profile | None:
    """The profile to use, or ``None``; :class:`ConfigError` for an unknown name."""
    chosen = name or env.get(ENV_PROFILE) or config.default_profile
    if not chosen:
        return config.profiles.get("default")
    profile = config.profiles.get(chosen)
    if profile is None:
        known = ", ".join(sorted(config.profiles)) or "none"
        where = config.path if config.exists else f"{config.path} (no such file)"
        raise ConfigError(f"no profile {chosen!r} in {where}; profiles: {known}")
    return profile


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


def _profile_token(profile: Profile, config: ConfigFile, env: Mapping[str, str],
                   warnings: list[str]) -> Token | None:  # fmt: skip
    whose = f"profile {profile.name!r}"
    if profile.token_env:
        token = env.get(profile.token_env) or None
        if token is None and not env.get(ENV_TOKEN):
            raise ConfigError(f"{whose} reads its token from ${profile.token_env}, which is not "
                              f"set (or `steadypost login --profile {profile.name}`)")  # fmt: skip
        return Token(token, f"${profile.token_env} ({whose})") if token else None
    if profile.token_keyring:
        try:
            token = keyring_token(profile.name)
        except KeyringUnavailableError as exc:
            raise ConfigError(f"{whose} keeps its token in the OS keyring: {exc}") from None
        if token is None and not env.get(ENV_TOKEN):
            raise ConfigError(f"{whose} keeps its token in the OS keyring, and it has none: "
                              f"run `steadypost login --profile {profile.name}`")  # fmt: skip
        return Token(token, f"the OS keyring ({whose})") if token else None
    if profile.token and config.readable_by_others:
        warnings.append(f"{config.path} holds a token and other users can read it: chmod 600 "
                        "it, or `steadypost login` to keep it in the OS keyring")  # fmt: skip
    return Token(profile.token, f"config.toml ({whose})") if profile.token else None


def _bound(creds: dict[str, str], configured: str | None, url: str | None, what: str,
           warnings: list[str]) -> dict[str, str]:  # fmt: skip
    """``creds`` if they were configured for ``url``'s site (or for no site in particular)."""
    if creds and configured and url and origin_of(configured) != origin_of(url):
        warnings.append(
            f"{what} is for {origin_of(configured)}; it is not sent to {origin_of(url)}"
        )
        return {}
    return creds


def resolve(
    config: ConfigFile,
    *,
    profile_name: str | None = None,
    env: Mapping[str, str] | None = None,
    endpoint: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    metadata: Sequence[tuple[str, str]] = (),
    chunk_size: int | None = None,
    platform: str | None = None,
    platform_options: Sequence[tuple[str, str]] = (),
) -> Settings:
    """Combine the profile, the environment and the flags (later wins).

    The platform is ``platform``, else ``$STEADYPOST_PLATFORM``, else the
    profile's, else plain tus. The profile's endpoint and platform options
    count only for the profile's own platform; with no endpoint anywhere, the
    platform's ``default_endpoint`` (TikTok's or Vimeo's API) is used.

    Credentials stay with the site they were configured for: the profile's
    token and headers go only to the profile's endpoint, ``$STEADYPOST_TOKEN``
    only to ``$STEADYPOST_ENDPOINT`` when that is set; an ``--endpoint`` on
    another site gets neither (with a warning).
    """
    env = os.environ if env is None else env
    profile = select_profile(config, profile_name, env) or Profile(name="")
    warnings: list[str] = []
    env_url = _from_env(ENV_ENDPOINT, check_endpoint, env[ENV_ENDPOINT]) if env.get(
        ENV_ENDPOINT) else None  # fmt: skip
    if not platform and env.get(ENV_PLATFORM):
        info = _from_env(ENV_PLATFORM, platform_info, env[ENV_PLATFORM])
    else:
        info = platform_info(platform or profile.platform or DEFAULT_PLATFORM)
    own = info.name == (profile.platform or DEFAULT_PLATFORM)  # else: for another platform
    options = {**(profile.platform_options if own else {}), **dict(platform_options)}
    check_platform_options(info, options)
    url = endpoint or env_url or (profile.endpoint if own else None) or info.default_endpoint

    from_profile = dict(profile.headers)
    token = _profile_token(profile, config, env, warnings)
    source = "a header of " + repr(profile.name) if "authorization" in map(
        str.lower, from_profile) else None  # fmt: skip
    if token:
        _set_header(from_profile, "Authorization", f"Bearer {token.value}")
        source = token.source
    merged = _bound(from_profile, profile.endpoint, url,
                    f"the token of profile {profile.name!r}", warnings)  # fmt: skip
    source = source if merged else None
    if env.get(ENV_TOKEN):
        from_env = {"Authorization": f"Bearer {env[ENV_TOKEN]}"}
        for name, value in _bound(from_env, env_url, url, f"${ENV_TOKEN}", warnings).items():
            _set_header(merged, name, value)
            source = f"${ENV_TOKEN}"
    for name, value in headers:
        _set_header(merged, name, value)
        source = "--header Authorization" if name.lower() == "authorization" else source
    if merged and url and urlsplit(url).scheme == "http" and not _loopback(url):
        warnings.append(
            f"credentials for {origin_of(url)} would travel unencrypted (http, not https)"
        )

    env_chunk = env.get(ENV_CHUNK_SIZE)
    size = chunk_size or (_from_env(ENV_CHUNK_SIZE, parse_size, env_chunk) if env_chunk else None)
    return Settings(
        profile=profile.name or None,
        endpoint=url,
        headers=MappingProxyType(merged),
        metadata=MappingProxyType({**profile.metadata, **dict(metadata)}),
        chunk_size=size or profile.chunk_size,
        warnings=tuple(warnings),
        platform=info.name,
        platform_options=MappingProxyType(options),
        token_source=source if any(k.lower() == "authorization" for k in merged) else None,
    )


def _from_env(name: str, check: Callable[[str], T], value: str) -> T:
    try:
        return check(value)
    except ConfigError as exc:
        raise ConfigError(f"${name}: {exc}") from None


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


__all__ = [
    "CONFIG_FILENAME",
    "DEFAULT_PLATFORM",
    "ENV_CHUNK_SIZE",
    "ENV_ENDPOINT",
    "ENV_PLATFORM",
    "ENV_PROFILE",
    "ENV_TOKEN",
    "ConfigError",
    "ConfigFile",
    "Profile",
    "Settings",
    "check_endpoint",
    "check_platform_options",
    "config_path",
    "load_config",
    "parse_header",
    "parse_metadata",
    "parse_option",
    "parse_rate",
    "parse_size",
    "platform_info",
    "resolve",
    "select_profile",
]
