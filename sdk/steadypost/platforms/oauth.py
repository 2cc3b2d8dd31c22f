"""OAuth 2.0 access tokens refreshed inside the flows (RFC 6749 section 6), never journaled.

A creator tool's ``token_provider`` may return an :class:`OAuthRefresh` for an
account instead of an access token; the platform adapters that support it
(YouTube today) then keep a fresh access token themselves::

    google = OAuthRefresh(token_url="https://oauth2.googleapis.com/token",
                          client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                          refresh_token=refresh_token_of(channel))
    Uploader(token_provider=lambda req: google)

Before the first request (and whenever the cached token is within
``margin_s`` of its end, or the platform answered 401 to it) the flow yields
``POST token_url`` with ``grant_type=refresh_token``; the access token it
answers lives only in this object's memory, for this process. Return the
*same* object for an account on every call, so its cache is reused.

``invalid_grant`` (a refresh token that was revoked, unused for six months,
or, for Google apps in Testing mode, older than seven days) is an
:class:`~steadypost.errors.AuthorizationError`: the creator must connect the
account again. A token endpoint that is down is retried like any request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from urllib.parse import urlencode

from steadypost.errors import AuthorizationError, Outcome, ProtocolError
from steadypost.flow import Flow, Request, Response
from steadypost.platforms.http import status_error

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
#: A cached token is refreshed this long before its announced end.
DEFAULT_MARGIN_S = 300.0
#: Assumed lifetime when the endpoint gives no ``expires_in`` (Google's are an hour).
DEFAULT_LIFETIME_S = 3600.0
_FORM = "application/x-www-form-urlencoded"


class OAuthRefresh:
    """One account's refresh token, and the access token it last gave (thread-safe).

    The secrets never appear in ``repr`` and are never journaled or logged.
    """

    def __init__(
        self, *, token_url: str, client_id: str, refresh_token: str,
        client_secret: str | None = None, margin_s: float = DEFAULT_MARGIN_S,
    ) -> None:  # fmt: skip
        if not refresh_token or not client_id:
            raise ValueError("OAuthRefresh needs a client_id and a refresh_token")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.margin_s = margin_s
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0
        """How many refresh requests were answered with a token (for tests and logs)."""

    def __repr__(self) -> str:
        return f"OAuthRefresh(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def current(self, now: float) -> str | None:
        """The cached access token if it is good for more than ``margin_s``, else ``None``."""
        with self._lock:
            if self._access is not None and now + self.margin_s < self._expires_at:
                return self._access
            return None

    def invalidate(self, token: str) -> None:
        """The platform refused ``token`` (401): the next :meth:`token` call refreshes."""
        with self._lock:
            if self._access == token:
                self._access, self._expires_at = None, 0.0

    def token(self, clock: Callable[[], float]) -> Flow[str]:
        """A valid access token: the cached one, or a refreshed one (one request)."""
        cached = self.current(clock())
        if cached is not None:
            return cached
        return (yield from self.refresh(clock))

    def refresh(self, clock: Callable[[], float]) -> Flow[str]:
        """``POST token_url`` with ``grant_type=refresh_token``; the new access token."""
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token,
                "client_id": self.client_id}  # fmt: skip
        if self._client_secret:
            form["client_secret"] = self._client_secret
        headers = (("Content-Type", _FORM), ("Accept", "application/json"))
        req = Request("POST", self.token_url, headers, urlencode(form).encode())
        sent_at = clock()
        resp: Response = yield req
        if resp.status in (400, 401):
            raise self._refused(resp)
        if resp.status != 200:
            raise status_error(req, resp, now=clock(), what="refreshing the access token failed")
        try:
            data = json.loads(resp.content.decode("utf-8", "replace"))
        except ValueError:
            data = None
        access = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(access, str) or not access.strip():
            raise ProtocolError(f"POST {self.token_url}: the answer has no access_token")
        expires_in = data.get("expires_in") if isinstance(data, dict) else None
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = DEFAULT_LIFETIME_S
        with self._lock:
            self._access = access.strip()
            self._expires_at = sent_at + max(0.0, float(expires_in))
            self.refreshes += 1
        return access.strip()

    def _refused(self, resp: Response) -> AuthorizationError:
        try:
            data = json.loads(resp.content.decode("utf-8", "replace"))
        except ValueError:
            data = {}
        code = str(data.get("error") or "refused") if isinstance(data, dict) else "refused"
        if code == "invalid_grant":
            why = ("the refresh token was revoked or has expired (unused for six months, or "
                   "seven days old for an app in Testing mode)")  # fmt: skip
        else:
            why = f"the token endpoint refused the client ({code})"
        return AuthorizationError(
            f"refreshing the access token failed: {why}: connect the account again, then "
            "post again", platform="oauth", code=code, status=resp.status,
            outcome=Outcome.REJECTED,
        )  # fmt: skip
