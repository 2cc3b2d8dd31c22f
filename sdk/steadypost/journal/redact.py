"""Keep secrets out of the journal's evidence log.

Events are meant to be pasted into bug reports, so before an event is stored
:func:`sanitize` drops every key that names a credential (``Authorization``,
``token``, ``api_key``, ``Cookie``...) at any depth, including header lists of
``(name, value)`` pairs, and rewrites every URL found in a string with
:func:`redact_url`, which blanks credential-like query parameters
(``access_token``, ``token``, ``signature``, ``sig``, ``key``, AWS/GCS signed-URL
parameters...) and a password in the user-info part. ``Bearer``/``Basic``
credentials written inside free text are blanked too.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "REDACTED"

_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "signature",
        "credentials",
        "x_api_key",
    }
)
_SECRET_KEY_SUFFIXES = ("token", "secret", "password", "passwd", "api_key", "apikey")

_SECRET_PARAMS = frozenset(
    {
        "access_token",
        "token",
        "signature",
        "sig",
        "key",
        "api_key",
        "apikey",
        "password",
        "client_secret",
        "x-amz-credential",
        "x-amz-signature",
        "x-amz-security-token",
        "x-goog-credential",
        "x-goog-signature",
    }
)
_SECRET_PARAM_SUFFIXES = ("token", "signature", "secret")

_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>\\]+")
_AUTH_SCHEME_RE = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_MAX_DEPTH = 16


def is_secret_key(name: str) -> bool:
    """Whether a mapping key or header name names a credential."""
    norm = name.strip().lower().replace("-", "_")
    return norm in _SECRET_KEYS or norm.endswith(_SECRET_KEY_SUFFIXES)


def _is_secret_param(name: str) -> bool:
    norm = unquote_plus(name).strip().lower()
    return norm in _SECRET_PARAMS or norm.endswith(_SECRET_PARAM_SUFFIXES)


def _redact_params(text: str) -> str:
    pieces = []
    for piece in text.split("&"):
        name, eq, value = piece.partition("=")
        if eq and value and _is_secret_param(name):
            piece = f"{name}={REDACTED}"
        pieces.append(piece)
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """``url`` with credential query parameters and any password blanked out.

    >>> redact_url("https://u:pw@cdn.example/v.mp4?X-Amz-Signature=abc&part=2")
    'https://u:REDACTED@cdn.example/v.mp4?X-Amz-Signature=REDACTED&part=2'

    The rest of the URL is kept byte for byte; a URL that cannot be parsed
    loses its whole query string instead.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        _ = parts.port  # raises ValueError on a malformed netloc
    except ValueError:
        head, sep, _rest = url.partition("?")
        return f"{head}?{REDACTED}" if sep else head
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            netloc = f"{user}:{REDACTED}@{hostport}"
    query = _redact_params(parts.query)
    fragment = _redact_params(parts.fragment) if "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """Free text with every URL passed through :func:`redact_url` and auth headers blanked."""
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    return _AUTH_SCHEME_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def sanitize(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of ``data`` with secrets removed (see the module docstring)."""
    return _sanitize_mapping(data, 0)


def _sanitize_mapping(data: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key.value if isinstance(key, enum.Enum) else key)
        if not is_secret_key(name):
            out[name] = _sanitize_value(value, depth + 1)
    return out


def _sanitize_value(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return _sanitize_mapping(value, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [
            _sanitize_value(item, depth + 1)
            for item in items
            if not (_is_header_pair(item) and is_secret_key(item[0]))
        ]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return redact_text(str(value))


def _is_header_pair(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
