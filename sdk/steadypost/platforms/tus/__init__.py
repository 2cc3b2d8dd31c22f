"""tus 1.0.0: the protocol's values (:mod:`.protocol`), one upload as a flow (:mod:`.upload`),
and the adapters that post with it (:mod:`.adapters`: plain tus, and tus plus a post API)."""

from steadypost.platforms.tus.protocol import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CREATION_WITH_UPLOAD_MAX,
    TUS_VERSION,
    ServerInfo,
    TusOptions,
)
from steadypost.platforms.tus.upload import TusUpload

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CREATION_WITH_UPLOAD_MAX",
    "TUS_VERSION",
    "ServerInfo",
    "TusOptions",
    "TusUpload",
]
