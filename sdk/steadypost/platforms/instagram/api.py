"""Instagram Graph API pieces: its error codes, the container's status, the publishing limit.

Errors arrive as ``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}``; the codes of Meta's error-handling guide decide:

==================================  ==============================================
Graph API says                       steadypost
==================================  ==============================================
code 1, 2 (temporary)                retried; on ``media_publish`` a 5xx is
                                     ambiguous: the container's status settles it
code 4, 17, 32, 341, 9 (throttling)  waits (``Retry-After`` or a minute), retries
code 368 (temporary block)           waits an hour
code 190, HTTP 401                   :class:`~steadypost.errors.AuthorizationError`:
                                     reconnect the account
code 10, 200-299 (permission)        failed, never retried
code 506 (duplicate post)            verified: the container's ``PUBLISHED`` status
any other code                       failed, with Meta's message
==================================  ==============================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from steadypost.errors import AuthorizationError, Outcome, PlatformError, SteadypostError
from steadypost.flow import Request, Response
from steadypost.platforms.base import CheckResult, CheckStatus
from steadypost.policy import parse_retry_after

GRAPH_API = "https://graph.facebook.com"
RUPLOAD = "https://rupload.facebook.com"
TEMPORARY_CODES = frozenset({1, 2})
THROTTLE_CODES = frozenset({4, 9, 17, 32, 341})
BLOCK_CODE = 368
AUTH_CODE = 190
DUPLICATE_CODE = 506
DEFAULT_THROTTLE_WAIT_S = 60.0
DEFAULT_BLOCK_WAIT_S = 3600.0
#: Unpublished containers expire after 24 hours.
CONTAINER_LIFETIME_S = 24 * 3600.0


def graph_code(resp: Response) -> tuple[int | None, str]:
    """``(error.code, error.message)`` of a Graph API answer (``(None, "")`` without one)."""
    try:
        body = json.loads(resp.content.decode("utf-8", "replace"))
    except ValueError:
        return None, ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    message = str(error.get("message") or "")[:300]
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), message


def graph_error(
    req: Request, resp: Response, *, now: float, what: str, publish: bool = False,
    read: bool = False,
) -> SteadypostError:  # fmt: skip
    """What an unsuccessful Graph answer means (see the module docstring).

    ``read``: the request only asked something (a container's status, the
    publishing limit), so whatever it answered, nothing was done: the error
    is ``NOT_DELIVERED`` (an expired token is still an ``AuthorizationError``).
    """
    code, message = graph_code(resp)
    where = f"{what}: {req.method} {req.url.split('?')[0]} answered {resp.status}"
    detail = f"{where} (code {code}: {message})" if code is not None else where
    retry_after = parse_retry_after(resp.header("retry-after"), now=now)
    common: dict[str, Any] = {"method": req.method, "url": req.url.split("?")[0]}
    if code == AUTH_CODE or resp.status == 401:
        return AuthorizationError(
            f"Instagram refused the account's access token ({message or resp.status}): "
            "connect the Instagram account again (a long-lived token lasts about 60 days), "
            "then post again", platform="instagram", code=str(code or "unauthorized"),
            status=resp.status,
        )  # fmt: skip
    if code in THROTTLE_CODES or code == BLOCK_CODE or resp.status == 429:
        wait = DEFAULT_BLOCK_WAIT_S if code == BLOCK_CODE else DEFAULT_THROTTLE_WAIT_S
        return PlatformError(f"{detail}: Instagram asks to slow down", code=str(code), status=429,
                             outcome=Outcome.NOT_DELIVERED, retry_after=retry_after or wait,
                             **common)  # fmt: skip
    if code == DUPLICATE_CODE and publish:
        return PlatformError(f"{detail}: a duplicate post; the container's status settles it",
                             code=str(code), status=resp.status, outcome=Outcome.AMBIGUOUS,
                             **common)  # fmt: skip
    if code in TEMPORARY_CODES or resp.status >= 500:
        outcome = Outcome.AMBIGUOUS if publish and not read else Outcome.NOT_DELIVERED
        status = resp.status if resp.status >= 500 else 503
        return PlatformError(f"{detail}: a temporary problem", code=str(code), status=status,
                             outcome=outcome, retry_after=retry_after, **common)  # fmt: skip
    refused = Outcome.NOT_DELIVERED if read else Outcome.REJECTED
    return PlatformError(detail, code=str(code), status=resp.status, outcome=refused,
                         **common)  # fmt: skip


def container_result(data: Mapping[str, Any], *, uploaded: bool) -> CheckResult:
    """What a container's ``status_code`` says about a post (for a check)."""
    code = str(data.get("status_code") or "")
    detail = MappingProxyType({k: str(data[k]) for k in ("status_code", "status", "id")
                               if k in data})  # fmt: skip
    if code == "PUBLISHED":
        return CheckResult(CheckStatus.PROCESSED, "Instagram published the Reel", detail=detail)
    if code == "ERROR":
        why = str(data.get("status") or "no reason given")
        return CheckResult(CheckStatus.FAILED, f"Instagram could not process it: {why}",
                           detail=detail)  # fmt: skip
    if code == "EXPIRED":
        return CheckResult(CheckStatus.NOT_PROCESSED, "the container expired unpublished (24 h)",
                           detail=detail)  # fmt: skip
    if code == "FINISHED":
        return CheckResult(CheckStatus.NOT_PROCESSED, "the container is ready but not published",
                           detail=detail)  # fmt: skip
    if code == "IN_PROGRESS" and uploaded:
        return CheckResult(CheckStatus.PROCESSING, "in progress", detail=detail)
    return CheckResult(CheckStatus.NOT_PROCESSED, f"the container is {code or 'unknown'}",
                       detail=detail)  # fmt: skip
