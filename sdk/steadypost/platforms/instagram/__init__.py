"""Instagram Reels through the Graph API: the adapter (:mod:`.platform`), its API (:mod:`.api`)."""

from steadypost.platforms.instagram.platform import GRAPH_API, InstagramPlatform

__all__ = ["GRAPH_API", "InstagramPlatform"]
