"""TikTok's Content Posting API: the adapter (:mod:`.platform`), its API calls (:mod:`.api`)
and its documented chunk rules (:mod:`.chunks`)."""

from steadypost.platforms.tiktok.platform import TIKTOK_API, TikTokOptions, TikTokPlatform

__all__ = ["TIKTOK_API", "TikTokOptions", "TikTokPlatform"]
