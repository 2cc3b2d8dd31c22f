"""Platform adapters: each speaks one platform's upload protocol as flows (no I/O).

``available()`` lists them (:class:`PlatformInfo`); ``platform_for()`` rebuilds
a journaled post's adapter. The adapters: :mod:`.generic` (plain tus and tus
plus a post API), :mod:`.tiktok` (TikTok's Content Posting API), :mod:`.vimeo`.
"""

from steadypost.platforms.registry import PlatformInfo, available, platform_for

__all__ = ["PlatformInfo", "available", "platform_for"]
