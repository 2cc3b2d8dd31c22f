"""Pieces every platform flow uses: which headers go where, and reading JSON answers."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from steadypost.errors import ProtocolError
from steadypost.flow import Request, Response, make_headers

if TYPE_CHECKING:
    from steadypost.platforms.oauth import OAuthRefresh

_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=1024)
def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, default port filled in: the guard's key."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS.get(scheme, 0)}"


def resolve_url(base: str, location: str, *, what: str) -> str:
    """A URL a server handed out (a ``Location``), made absolute against ``base``.

    Userinfo (``http://user:pass@host/...``) is dropped: a server's password
    is never sent (httpx would turn it into Basic auth) nor journaled. Only
    ``http`` and ``https`` URLs with a host are accepted; anything else is a
    :class:`ProtocolError` naming ``what``.
    """
    text = location.strip()
    try:
        parts = urlsplit(urljoin(base, text))
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise ProtocolError(f"{what} is not a usable URL: {text[:200]!r}") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ProtocolError(f"{what} is not an http(s) URL: {text[:200]!r}")
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class HeaderPolicy:
    """Your own headers (e.g. ``Authorization``) and the origins allowed to receive them.

    A URL the server hands back (a tus ``Location`` on a CDN, say) on another
    origin gets none of them unless that origin was allowed explicitly.
    """

    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    trusted: frozenset[str] = frozenset()
    oauth: OAuthRefresh | None = field(default=None, compare=False)
    """The account's refreshable OAuth token, when the token provider gave one (the
    adapters that support it keep ``Authorization`` fresh themselves)."""

    @classmethod
    def for_endpoint(
        cls, endpoint: str, headers: Mapping[str, str], allowed_origins: Iterable[str] = (),
        *, oauth: OAuthRefresh | None = None,
    ) -> HeaderPolicy:  # fmt: skip
        trusted = {origin_of(endpoint), *(origin_of(o) for o in allowed_origins)}
        return cls(MappingProxyType(dict(headers)), frozenset(trusted), oauth)

    def for_url(self, url: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        custom = self.headers if origin_of(url) in self.trusted else {}
        return make_headers(custom, extra)


def json_object(request: Request, response: Response) -> dict[str, Any]:
    """The answer's JSON object, or a :class:`ProtocolError` (HTML, junk, not an object)."""
    text = response.content.decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError:
        kind = "an HTML page" if "<html" in text[:500].lower() else "something that is not JSON"
        raise ProtocolError(
            f"{request.method} {request.url} answered {response.status} with {kind}"
        ) from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{request.method} {request.url} answered JSON that is not an object")
    return value
