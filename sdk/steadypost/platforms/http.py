"""Pieces every platform flow uses: which headers go where, and reading JSON answers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from steadypost.errors import ProtocolError, StatusError
from steadypost.flow import Request, Response, make_headers
from steadypost.origins import DEFAULT_PORTS, origin_of
from steadypost.policy import outcome_for_status, parse_http_date, parse_retry_after

if TYPE_CHECKING:
    from steadypost.platforms.oauth import OAuthRefresh



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
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
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


#: Headers servers use to name a request in their logs; kept in the journal.
REQUEST_ID_HEADERS = (
    "x-request-id",
    "x-amz-request-id",
    "x-tt-logid",
    "cf-ray",
    "x-cloud-trace-context",
)


def request_id(response: Response) -> str | None:
    """The server's name for a request (for support tickets), if it sent one."""
    for name in REQUEST_ID_HEADERS:
        value = response.header(name)
        if value:
            return value
    return None


def status_error(
    request: Request, response: Response, *, what: str, now: float | None = None,
    read: bool = False,
) -> StatusError:  # fmt: skip
    """A :class:`StatusError` for an unexpected answer, with ``Retry-After`` parsed.

    Its outcome comes from :func:`steadypost.policy.outcome_for_status`
    (``read=True`` for a check or a status query: nothing was done). A
    ``Retry-After`` date is read against the server's own ``Date`` header when
    it sent one (so a client whose clock is off waits as long as asked), else
    against when the answer came (``response.received_at``, or ``now``).
    """
    body = response.content[:200].decode("utf-8", "replace").strip()
    hint = f": {body}" if body and "<html" not in body.lower() else ""
    status = response.status
    return StatusError(
        f"{what}: {request.method} {request.url} answered {status}{hint}",
        outcome=outcome_for_status(status, read=read),
        status=status,
        method=request.method,
        url=request.url,
        retry_after=_retry_after(response, now),
        request_id=request_id(response),
    )


def _retry_after(response: Response, now: float | None) -> float | None:
    """``Retry-After`` in seconds; a date is read against when the server answered.

    On the server's own clock (its ``Date`` header) when it says, else on ours;
    with neither, a date means "now" (the backoff still applies).
    """
    value = response.header("retry-after")
    answered = parse_http_date(response.header("date"))
    if answered is None:
        answered = response.received_at if response.received_at is not None else now
    return parse_retry_after(value, now=answered if answered is not None else math.inf)
