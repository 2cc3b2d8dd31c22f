"""The sans-I/O core: what a flow may yield (:mod:`.effects`), what it reports
(:mod:`.events`), and how it retries (:mod:`.retrying`).

Flows import from here; nothing in this package does I/O.
"""

from steadypost.flow.effects import (
    Acquire,
    Concurrently,
    Digest,
    Drive,
    Effect,
    Emit,
    FileBody,
    FileSha256,
    Flow,
    Hasher,
    Misconfigured,
    NoProgress,
    NullObserver,
    Observer,
    Request,
    Response,
    Sleep,
    make_headers,
)
from steadypost.flow.retrying import RetryContext, WireMeter, wait_before_retry, with_retries

__all__ = [
    "Acquire",
    "Concurrently",
    "Digest",
    "Drive",
    "Effect",
    "Emit",
    "FileBody",
    "FileSha256",
    "Flow",
    "Hasher",
    "Misconfigured",
    "NoProgress",
    "NullObserver",
    "Observer",
    "Request",
    "Response",
    "RetryContext",
    "Sleep",
    "WireMeter",
    "make_headers",
    "wait_before_retry",
    "with_retries",
]
