"""Option types and the option groups several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from steadypost import DEFAULT_CHUNK_SIZE

from .app import App
from .config import (
    ConfigError,
    check_endpoint,
    parse_header,
    parse_metadata,
    parse_option,
    parse_size,
    platform_info,
)

F = TypeVar("F", bound=Callable[..., Any])

pass_app = click.make_pass_decorator(App)


if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]
else:  # click < 8.5 has no type parameters
    _ParamType = click.ParamType


class _Checked(_ParamType):
    """A string checked (and converted) by one of the ``config`` parsers."""

    def __init__(self, name: str, check: Callable[[str], Any]) -> None:
        self.name = name
        self._check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._check(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


SIZE = _Checked("SIZE", parse_size)
URL = _Checked("URL", check_endpoint)
HEADER = _Checked("'NAME: VALUE'", parse_header)
METADATA = _Checked("KEY=VALUE", parse_metadata)
PLATFORM = _Checked("NAME", lambda text: platform_info(text).name)
PLATFORM_OPTION = _Checked("KEY=VALUE", parse_option)


def _set_profile(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(App).profile = value


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(App).set_debug(True)


def profile_option(f: F) -> F:
    return click.option(
        "--profile", metavar="NAME", expose_value=False, callback=_set_profile,
        help="Use this profile of config.toml (default: $STEADYPOST_PROFILE or default_profile).",
    )(f)  # fmt: skip


def debug_option(f: F) -> F:
    return click.option(
        "--debug", is_flag=True, expose_value=False, callback=_set_debug,
        help="Log every request and show full tracebacks.",
    )(f)  # fmt: skip


def common_options(f: F) -> F:
    """``--profile`` and ``--debug``, accepted before or after the command name."""
    return profile_option(debug_option(f))


def json_option(f: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True,
        help="Print one JSON object per post on stdout instead of text.",
    )(f)  # fmt: skip


def header_option(f: F) -> F:
    return click.option(
        "--header", "-H", "headers", type=HEADER, multiple=True,
        help="Extra request header 'Name: value' (repeatable). Sent only to the endpoint's "
        "site; never saved in the journal.",
    )(f)  # fmt: skip


def chunk_size_option(f: F) -> F:
    return click.option(
        "--chunk-size", type=SIZE, default=None,
        help="Bytes per request, e.g. 8MiB, 5MB, 1048576 (default: the profile, "
        f"$STEADYPOST_CHUNK_SIZE, or {DEFAULT_CHUNK_SIZE // (1024 * 1024)}MiB).",
    )(f)  # fmt: skip


def post_options(f: F) -> F:
    """``--endpoint``, ``--header``, ``--metadata``, ``--chunk-size`` (``upload`` and ``add``)."""
    f = chunk_size_option(f)
    f = click.option(
        "--metadata", "-m", type=METADATA, multiple=True,
        help="Upload metadata key=value, e.g. caption='Day one' (repeatable). "
        "filename is set to the file's name unless given.",
    )(f)  # fmt: skip
    f = header_option(f)
    return click.option(
        "--endpoint", "-e", type=URL, default=None,
        help="The platform's upload endpoint (default: $STEADYPOST_ENDPOINT, the profile, or "
        "the API of a platform that has one: TikTok's, Vimeo's).",
    )(f)  # fmt: skip


def platform_options(f: F) -> F:
    """``--platform`` and ``--platform-option`` (``upload`` and ``add``)."""
    f = click.option(
        "--platform-option", "platform_options", type=PLATFORM_OPTION, multiple=True,
        help="An option of the platform, key=value (repeatable), e.g. privacy_level=SELF_ONLY "
        "or mode=inbox for TikTok. Added to the profile's platform_options.",
    )(f)  # fmt: skip
    return click.option(
        "--platform", "-p", "platform", type=PLATFORM, default=None,
        help="Where the posts go: tus (any tus server, the default), post-api, tiktok or "
        "vimeo (default: $STEADYPOST_PLATFORM or the profile's platform). "
        "`steadypost platforms` lists them.",
    )(f)  # fmt: skip
