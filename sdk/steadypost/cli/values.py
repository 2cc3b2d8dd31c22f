"""Single values of the CLI's settings, checked: sizes, URLs, headers, metadata, platforms.

Each parser takes the text a user typed (a flag, a variable, a config value) and
returns the value, or raises :class:`ConfigError` saying what to write instead.
:mod:`steadypost.cli.config` re-exports them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from steadypost.platforms import PlatformInfo

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
}  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ConfigError(ValueError):
    """A value from the config file, the environment or a flag is not usable."""


def parse_size(text: str) -> int:
    """Bytes from ``"8MiB"``, ``"5MB"``, ``"512k"`` or ``"1048576"``.

    ``KiB/MiB/GiB`` and the bare ``K/M/G`` are powers of 1024, ``KB/MB/GB``
    powers of 1000. Raises :class:`ConfigError` on anything else.
    """
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(
            f"{text!r} is not a size; write bytes or a number with a unit: "
            "1048576, 512KiB, 8MiB, 5MB, 1GiB"
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ConfigError(f"{text!r} is too small: a size is at least 1 byte")
    return size


def check_endpoint(url: str) -> str:
    """``url`` if it is an absolute ``http(s)://host/...`` URL, else :class:`ConfigError`."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(
            f"{url!r} is not an http(s) URL; give the upload endpoint, "
            "e.g. https://uploads.example.com/files/"
        )
    return url.strip()


def parse_header(text: str) -> tuple[str, str]:
    """``("Name", "value")`` from ``"Name: value"``. The value is never echoed in errors."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not _HEADER_NAME.match(name):
        raise ConfigError("a header is written 'Name: value', e.g. 'X-Channel: travel'")
    value = value.strip()
    if "\r" in value or "\n" in value:
        raise ConfigError(f"the value of header {name} contains a line break")
    return name, value


def parse_metadata(text: str) -> tuple[str, str]:
    """``("key", "value")`` from ``"key=value"`` (tus keys have no spaces or commas)."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key or any(c in key for c in " ,\t"):
        raise ConfigError(f"{text!r}: metadata is written key=value, e.g. caption='Day one'")
    return key, value


def parse_option(text: str) -> tuple[str, str]:
    """``("key", "value")`` from a ``--platform-option`` ``"key=value"``."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"{text!r}: a platform option is written key=value, "
                          "e.g. privacy_level=SELF_ONLY")  # fmt: skip
    return key, value.strip()


def platform_info(name: str) -> PlatformInfo:
    """The listed platform called ``name``; :class:`ConfigError` naming the known ones."""
    from steadypost.platforms import available  # here: loading the adapters takes time

    infos = available()
    for info in infos:
        if info.name == name.strip().lower():
            return info
    known = ", ".join(info.name for info in infos)
    raise ConfigError(f"unknown platform {name!r}; known platforms: {known} "
                      "(`steadypost platforms` describes them)")  # fmt: skip


def check_platform_options(info: PlatformInfo, options: Mapping[str, str]) -> None:
    """:class:`ConfigError` for an option ``info``'s platform does not take."""
    unknown = sorted(set(options) - set(info.options))
    if not unknown:
        return
    known = ", ".join(info.options) if info.options else "none"
    raise ConfigError(f"platform {info.name} has no option {unknown[0]!r} (its options: {known})")


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*?)\s*(?:/s)?\s*$")


def parse_rate(text: str) -> float | None:
    """Bytes per second from ``"2M"``, ``"2MiB/s"``, ``"500K"``, ``"1.5MB/s"``; ``"0"``/``"off"``:
    ``None`` (no cap). Units as for sizes: ``K``/``M``/``G`` and ``KiB``... are powers of
    1024, ``KB``/``MB``/``GB`` of 1000 (rclone's ``--bwlimit 2M`` is 2 MiB/s too)."""
    if text.strip().lower() in ("0", "off", "none"):
        return None
    match = _RATE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(f"{text!r} is not a rate; write bytes per second with a unit: "
                          "2M (2 MiB/s), 500K, 1.5MB/s, or off")  # fmt: skip
    rate = float(match.group(1)) * _UNITS[unit]
    if rate < 1024:
        raise ConfigError(f"{text!r} is below 1 KiB/s: no upload would get through in time")
    return rate
