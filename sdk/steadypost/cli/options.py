"""Option types and the option groups several commands share."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from steadypost.cli.app import App

F = TypeVar("F", bound=Callable[..., Any])

#: ``steadypost.DEFAULT_CHUNK_SIZE`` in words (a test keeps them equal; importing it here
#: would load the platforms and httpx before ``--help`` could print).
DEFAULT_CHUNK_TEXT = "64MiB"

#: How long ``upload`` and ``resume`` keep trying through an outage, by default.
DEFAULT_WAIT_UP_TO = "30m"
MAX_WAIT_UP_TO_S = 7 * 86400.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)\s*")
_DURATION_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip

pass_app = click.make_pass_decorator(App)


if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]
else:  # click < 8.5 has no type parameters
    _ParamType = click.ParamType


class _Checked(_ParamType):
    """A string checked (and converted) by a parser: a function, or one of ``config``'s by name.

    By name, ``config`` is imported when a value is converted, not when the options are
    declared (``steadypost --help`` starts without it).
    """

    def __init__(self, name: str, check: Callable[[str], Any] | str) -> None:
        self.name = name
        self._check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from steadypost.cli import config

        if not isinstance(value, str):
            return value
        check = getattr(config, self._check) if isinstance(self._check, str) else self._check
        try:
            return check(value)
        except config.ConfigError as exc:
            self.fail(str(exc), param, ctx)


def parse_duration(text: str) -> float:
    """Seconds from ``"30m"``, ``"90s"``, ``"1h"``, ``"1h30m"``, ``"1.5h"``, ``"45"`` or ``"0"``.

    Units: ``s``, ``m``/``min``, ``h``, ``d`` (and their long names); a bare
    number is seconds. Raises :class:`ConfigError` on anything else, negative
    values included.
    """
    from steadypost.cli.config import ConfigError

    rest = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", rest):
        return float(rest)
    total, parts = 0.0, 0
    while rest:
        match = _DURATION_PART.match(rest)
        if match is None or match.group(2) not in _DURATION_UNITS:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        parts += 1
        rest = rest[match.end() :]
    if rest or not parts:
        raise ConfigError(
            f"{text!r} is not a duration; write a number with a unit: 90s, 30m, 1h, 1h30m, 0"
        )
    return total


def parse_wait(text: str) -> float:
    """A ``--wait-up-to`` duration: :func:`parse_duration`, at most :data:`MAX_WAIT_UP_TO_S`."""
    from steadypost.cli.config import ConfigError

    seconds = parse_duration(text)
    if seconds > MAX_WAIT_UP_TO_S:
        raise ConfigError(f"{text!r} is longer than a week; for longer waits let the daemon "
                          "go on (`steadypost daemon`)")  # fmt: skip
    return seconds


def _platform_name(text: str) -> str:
    from steadypost.cli.config import platform_info

    return platform_info(text).name


SIZE = _Checked("SIZE", "parse_size")
DURATION = _Checked("DURATION", parse_wait)
URL = _Checked("URL", "check_endpoint")
HEADER = _Checked("'NAME: VALUE'", "parse_header")
METADATA = _Checked("KEY=VALUE", "parse_metadata")
PLATFORM = _Checked("NAME", _platform_name)
PLATFORM_OPTION = _Checked("KEY=VALUE", "parse_option")
RATE = _Checked("RATE", "parse_rate")


def _set_profile(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(App).profile = value


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(App).set_debug(True)


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(App).set_verbosity(-1)


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        app = ctx.ensure_object(App)
        app.set_verbosity(max(app.verbosity, min(value, 2)))


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


def verbosity_options(f: F) -> F:
    f = click.option(
        "--verbose", "-v", count=True, expose_value=False, callback=_set_verbose,
        help="Say more on stderr: -v the library's notes, -vv every request.",
    )(f)  # fmt: skip
    return click.option(
        "--quiet", "-q", is_flag=True, expose_value=False, callback=_set_quiet,
        help="Only results (stdout) and errors: no progress, notes or warnings.",
    )(f)  # fmt: skip


def _set_journal(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(App).journal_target = value


def journal_option(f: F) -> F:
    return click.option(
        "--journal", metavar="PATH|URL", expose_value=False, callback=_set_journal,
        help="The journal: a file, or postgresql://user@host/db for one shared by a fleet of "
        "daemons (default: $STEADYPOST_JOURNAL, the profile's journal, or the file in "
        "$STEADYPOST_HOME).",
    )(f)  # fmt: skip


def common_options(f: F) -> F:
    """``--profile``, ``--journal``, ``-q``/``-v``, ``--debug``: before or after the command."""
    return profile_option(journal_option(verbosity_options(debug_option(f))))


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
        f"$STEADYPOST_CHUNK_SIZE, or {DEFAULT_CHUNK_TEXT}).",
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
        help="Where the posts go: tus (any tus server, the default), post-api, tiktok, "
        "vimeo, youtube, instagram or x (default: $STEADYPOST_PLATFORM or the profile's "
        "platform). `steadypost platforms` lists them.",
    )(f)  # fmt: skip


def to_option(f: F) -> F:
    """``--to NAMES``: several destinations at once (``upload``, ``add``, ``daemon``)."""
    return click.option(
        "--to", "to", multiple=True, metavar="NAMES",
        help="Post each video to several platforms, e.g. --to tiktok,youtube,instagram: one "
        "post per platform, grouped, side by side. Each name is a profile of config.toml or "
        "a platform (`steadypost platforms`); each takes its endpoint and token from its "
        "profile. Replaces --endpoint, --platform and --header.",
    )(f)  # fmt: skip


def wait_options(f: F) -> F:
    """``--wait-up-to DURATION`` and ``--no-wait`` (``upload`` and ``resume``)."""
    f = click.option(
        "--no-wait", is_flag=True,
        help="Do not wait for a recovering platform: a post the platform cannot take now is "
        "left waiting (exit 4) for `steadypost resume` or the daemon. For scripts; the same "
        "as --wait-up-to 0.",
    )(f)  # fmt: skip
    return click.option(
        "--wait-up-to", type=DURATION, default=DEFAULT_WAIT_UP_TO, show_default=True,
        metavar="DURATION",
        help="While the platform is down, keep trying (at the pace its circuit breaker "
        "allows, with a countdown) for up to this long without progress, e.g. 90s, 10m, 2h. "
        "Then the post is left waiting for `steadypost resume` or the daemon.",
    )(f)  # fmt: skip


def batch_options(f: F) -> F:
    """``-j``, ``--bwlimit`` and ``--dry-run`` (``upload`` and ``resume``)."""
    f = click.option(
        "--dry-run", "-n", is_flag=True,
        help="Say what would be posted (and what is posted already) without sending or "
        "journaling anything.",
    )(f)  # fmt: skip
    f = click.option(
        "--bwlimit", type=RATE, default=None, metavar="RATE",
        help="Cap the upload speed of the whole command, e.g. 2M (2 MiB/s), 500K, 1.5MB/s.",
    )(f)  # fmt: skip
    return click.option(
        "--jobs", "-j", type=click.IntRange(1, 16), default=1, show_default=True,
        help="Posts uploaded at the same time. Each site keeps its own pace: a site that is "
        "down or busy holds back only its own posts.",
    )(f)  # fmt: skip
