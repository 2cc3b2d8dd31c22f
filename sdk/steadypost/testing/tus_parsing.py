"""Parsing of tus request headers; every function raises ``ValueError`` on bad input."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from types import MappingProxyType


def parse_int(raw: str | None) -> int | None:
    """A non-negative decimal integer header, or ``None`` when absent or malformed."""
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


def parse_metadata(raw: str) -> Mapping[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value optional).

    Values are decoded as UTF-8 (undecodable bytes become U+FFFD); a key
    without a value maps to ``""``.
    """
    result: dict[str, str] = {}
    if not raw.strip():
        return MappingProxyType(result)
    for pair in raw.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise ValueError(f"malformed pair {pair.strip()!r}")
        key = parts[0]
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        try:
            value = base64.b64decode(parts[1], validate=True) if len(parts) == 2 else b""
        except binascii.Error as exc:
            raise ValueError(f"value of {key!r} is not base64") from exc
        result[key] = value.decode("utf-8", "replace")
    return MappingProxyType(result)


def parse_checksum(raw: str, allowed: Collection[str]) -> tuple[str, bytes]:
    """``Upload-Checksum: <algorithm> <base64 digest>`` -> ``(algorithm, digest)``."""
    parts = raw.strip().split(" ")
    if len(parts) != 2:
        raise ValueError("expected '<algorithm> <base64 digest>'")
    algorithm = parts[0].lower()
    if algorithm not in allowed:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    try:
        return algorithm, base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise ValueError("digest is not base64") from exc
