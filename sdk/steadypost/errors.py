"""Every error steadypost raises, under one root: :class:`SteadypostError`.

A creator tool usually needs one question answered: *may this post already be
live?*  Every error therefore carries an :class:`Outcome`:

``Outcome.NOT_DELIVERED``
    The server certainly did not act on the request (connection refused, a 503
    before the body was read, ...). Retrying later is safe.
``Outcome.AMBIGUOUS``
    The request may have been processed (a timeout after the last byte, a
    connection reset, a 5xx on a publish). Do **not** resend blindly: the post
    becomes ``unconfirmed`` and is verified later.
``Outcome.REJECTED``
    The server said no for a reason a retry cannot fix (a 4xx, a revoked token,
    a changed file). The post is ``failed``.

httpx and sqlite3 exceptions are translated at a single boundary
(:mod:`steadypost.drivers.http` and :mod:`steadypost.journal`); the original is
kept as ``__cause__``.
"""

from __future__ import annotations

import enum


class Outcome(str, enum.Enum):
    """What a failure says about whether the server acted on the request."""

    NOT_DELIVERED = "not_delivered"
    AMBIGUOUS = "ambiguous"
    REJECTED = "rejected"


class SteadypostError(Exception):
    """The root of every error raised by steadypost."""

    outcome: Outcome = Outcome.REJECTED


# --- network ----------------------------------------------------------------


class TransportError(SteadypostError):
    """The HTTP exchange did not complete (no status line was received)."""

    outcome = Outcome.AMBIGUOUS


class ConnectFailedError(TransportError):
    """The connection could not be opened (refused, DNS, connect/pool timeout).

    Nothing reached the server, so the request is safe to send again.
    """

    outcome = Outcome.NOT_DELIVERED


class CertificateError(TransportError):
    """The server's TLS certificate could not be verified; nothing was sent.

    Not retried: a wrong or self-signed certificate does not fix itself, and
    sending credentials to an unverified server is what TLS is there to stop.
    If you run a private CA, point ``SSL_CERT_FILE`` at its certificate, or
    pass your own ``httpx.Client(verify=...)`` to the uploader.
    """

    outcome = Outcome.NOT_DELIVERED


class ConnectionLostError(TransportError):
    """The request was (perhaps partly) sent, then the exchange broke.

    A read or write timeout, a reset, a half-closed connection. The server may
    have acted on what it received.
    """

    outcome = Outcome.AMBIGUOUS


class StatusError(SteadypostError):
    """The server answered with a status the flow cannot accept.

    ``retry_after`` is the server's ``Retry-After`` in seconds (already parsed,
    ``None`` when absent); ``request_id`` is the server's request-id header when
    it sent one, for support tickets.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
        request_id: str | None = None,
        outcome: Outcome = Outcome.REJECTED,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.retry_after = retry_after
        self.request_id = request_id
        self.outcome = outcome


class ChecksumMismatchError(StatusError):
    """The server computed a different checksum for a chunk (tus status 460)."""


class PlatformError(StatusError):
    """A platform API answered with one of its own error codes.

    ``code`` is the platform's code (TikTok's ``error.code``, e.g.
    ``invalid_params`` or ``spam_risk_too_many_pending_share``); ``outcome``
    and ``retry_after`` say what steadypost does about it.
    """

    def __init__(
        self, message: str, *, code: str, status: int, method: str = "", url: str = "",
        retry_after: float | None = None, request_id: str | None = None,
        outcome: Outcome = Outcome.REJECTED,
    ) -> None:  # fmt: skip
        super().__init__(
            message, status=status, method=method, url=url, retry_after=retry_after,
            request_id=request_id, outcome=outcome,
        )  # fmt: skip
        self.code = code


class AuthorizationError(SteadypostError):
    """The platform refused the account: its token is invalid or expired, or a scope is missing.

    Nothing is retried: the user must reconnect the account (``message``
    says so, naming the platform). ``code`` is the platform's error code,
    ``status`` its HTTP status (``None`` when no request was made, e.g. no
    token was configured). A token provider that fails is reported with
    ``outcome=NOT_DELIVERED``: the post waits and tries again later.
    """

    def __init__(
        self, message: str, *, platform: str, code: str, status: int | None = None,
        outcome: Outcome = Outcome.REJECTED,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.platform = platform
        self.code = code
        self.status = status
        self.outcome = outcome


class UploadGoneError(SteadypostError):
    """The upload resource no longer exists (404, 410, or ``Upload-Expires`` passed).

    The upload is started again from byte 0 under a new URL.
    """

    outcome = Outcome.NOT_DELIVERED


class ProtocolError(SteadypostError):
    """The server answered something that breaks the protocol.

    For example an ``Upload-Offset`` beyond the file size or going backwards, a
    missing header, or HTML where JSON was expected. steadypost stops rather
    than send bytes that could corrupt the video.
    """

    outcome = Outcome.REJECTED


class StalledError(SteadypostError):
    """The server said yes but the upload did not move (the same offset, a byte or two).

    A failed attempt like any other: a wait comes before the next request,
    and the host's retry budget and circuit breaker count it. Raised inside
    a flow's retry loop; what escapes after too many in a row is
    :class:`UploadStalledError`.
    """

    outcome = Outcome.NOT_DELIVERED


class UploadStalledError(ProtocolError):
    """The server kept accepting requests while its offset did not move forward."""


class WireBoundError(SteadypostError):
    """Sending more would put too many bytes on the wire for one post.

    The bound (``RetryPolicy.wire_factor`` times the file's size plus one
    chunk, over all of the post's runs) stops a server that keeps losing or
    refusing bytes from making the client send the file many times over.
    The post fails with this reason; post it again once the server is fixed.
    """

    outcome = Outcome.REJECTED


class ConfigurationError(SteadypostError):
    """The endpoint does not answer like the platform: most likely a wrong URL, not an outage.

    Nothing listens there, it speaks something else (``https://`` to a plain
    HTTP port), or it is a web server that is not a tus server. Raised only
    for an origin that has never answered like the platform; once it has, the
    same failures are an outage (waits, breaker). Nothing is retried and no
    breaker state is kept; the post fails with the cause (the CLI exits 2).
    """

    outcome = Outcome.REJECTED


class HostUnavailableError(SteadypostError):
    """The request was not sent: its host is being given time to recover.

    Its circuit breaker is open (or its one probe request is out), the
    process's retry budget for it is spent, it asked everybody to wait with
    ``Retry-After``, or its platform's status page reports a major outage.
    ``retry_after`` is the number of seconds until the host may be tried
    again. Nothing reached the server; a journaled post waits (``waiting``,
    ``next_attempt_at`` = then) instead of failing. Flows never retry it
    themselves: that would only spin in place.
    """

    outcome = Outcome.NOT_DELIVERED

    def __init__(self, message: str, *, host: str, retry_after: float, reason: str = "") -> None:
        super().__init__(message)
        self.host = host
        self.retry_after = max(0.0, retry_after)
        self.reason = reason


# --- giving up ----------------------------------------------------------------


class RetriesExhaustedError(SteadypostError):
    """The retry attempts or the deadline ran out.

    ``outcome`` is that of the last failure: ``NOT_DELIVERED`` means the
    post can simply be tried again later (it waits in the journal);
    ``AMBIGUOUS`` means the last bytes may have been processed.
    """

    def __init__(self, message: str, *, outcome: Outcome, attempts: int) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.attempts = attempts


class UploadCancelledError(SteadypostError):
    """The upload was cancelled by the caller (``cancel()`` or a signal)."""

    outcome = Outcome.NOT_DELIVERED


class InternalError(SteadypostError):
    """steadypost itself failed unexpectedly while working on a post (a bug: please report it).

    The post is not lost: it waits like after any failed attempt, with
    backoff, and fails after a few such runs instead of being retried at once
    forever. The original exception is the ``__cause__``.
    """

    outcome = Outcome.NOT_DELIVERED


# --- local problems -------------------------------------------------------------


class FileProblemError(SteadypostError):
    """The file to upload is missing, unreadable, a directory, or changed.

    A changed file is never resumed into an upload begun with other bytes.
    """

    outcome = Outcome.REJECTED


class JournalError(SteadypostError):
    """The journal could not be opened, read or written (corrupt, disk full, ...)."""

    outcome = Outcome.NOT_DELIVERED


class JournalCorruptError(JournalError):
    """The file is corrupt or is not a steadypost journal; it was left untouched."""


class SchemaTooNewError(JournalError):
    """The journal was written by a newer steadypost; upgrade steadypost to use it."""


class PostNotFoundError(JournalError):
    """No post with this id is in the journal (never added, or purged)."""


class PostExistsError(JournalError):
    """A post with this id is already in the journal (ids are idempotency keys)."""


class IllegalTransitionError(JournalError):
    """A post was asked to move between states the lifecycle does not allow."""

    outcome = Outcome.REJECTED


class LeaseHeldError(JournalError):
    """Another process or thread holds the post's lease and is working on it."""
