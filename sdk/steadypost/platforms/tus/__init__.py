"""tus 1.0.0: the protocol as a flow (:mod:`.protocol`), and the adapters that post with it
(:mod:`.adapters`: plain tus, and tus plus a publish call and a status endpoint)."""

from steadypost.platforms.tus.protocol import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CREATION_WITH_UPLOAD_MAX,
    TUS_VERSION,
    ServerInfo,
    TusOptions,
    TusUpload,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CREATION_WITH_UPLOAD_MAX",
    "TUS_VERSION",
    "ServerInfo",
    "TusOptions",
    "TusUpload",
]
