"""YouTube Data API v3 resumable uploads: the adapter (:mod:`.platform`), its API (:mod:`.api`)."""

from steadypost.platforms.youtube.platform import YOUTUBE_API, YouTubePlatform

__all__ = ["YOUTUBE_API", "YouTubePlatform"]
