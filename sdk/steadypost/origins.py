"""Origins: ``scheme://host:port``, the unit credentials and the host guard go by.

One function for every place that compares sites: which origins may get your
headers (:class:`~steadypost.platforms.http.HeaderPolicy`), the host guard's
key, the journal's "one post per file, site and account", and the CLI and
daemon's "credentials stay with their site".
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


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
    return f"{scheme}://{host}:{port or DEFAULT_PORTS.get(scheme, 0)}"
