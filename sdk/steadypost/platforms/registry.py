"""Which platforms steadypost speaks, and rebuilding a post's adapter from the journal.

``available()`` lists them for a user interface (the CLI's platform list)::

    for info in steadypost.platforms.available():
        print(info.name, info.default_endpoint, info.verification)

``platform_for(name, config, auth)`` rebuilds the adapter a post was journaled
with (its ``config`` never holds a token: ``auth`` comes from the uploader).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from steadypost.errors import JournalError
from steadypost.platforms.base import Platform
from steadypost.platforms.http import HeaderPolicy
from steadypost.platforms.instagram import GRAPH_API, InstagramPlatform
from steadypost.platforms.tiktok import TIKTOK_API, TikTokOptions, TikTokPlatform
from steadypost.platforms.tus.adapters import platform_for as generic_platform_for
from steadypost.platforms.vimeo import VIMEO_API, VimeoPlatform
from steadypost.platforms.x import X_API, XPlatform
from steadypost.platforms.youtube import YOUTUBE_API, YouTubePlatform


@dataclass(frozen=True)
class PlatformInfo:
    """What a platform adapter does, for listing (all plain text)."""

    name: str
    """Stored with each post; pass it to :func:`platform_for`."""
    title: str
    bytes: str
    """How the video's bytes travel."""
    publish: str
    verification: str
    """How an ``unconfirmed`` post is settled."""
    default_endpoint: str | None
    """The API base to post to (``None``: your own server's URL)."""
    options: tuple[str, ...]
    """Config keys the adapter accepts (strings, as journaled)."""
    needs_token: bool
    """Whether an ``Authorization: Bearer`` token (headers or token provider) is required."""
    sources: str
    """Where its behaviour comes from (documentation vs. secondary sources)."""


_INFOS = (
    PlatformInfo(
        name="tus", title="Any tus 1.0.0 server", bytes="tus 1.0.0 (creation, PATCH, HEAD)",
        publish="none: the upload is the post",
        verification="HEAD: confirmed when Upload-Offset equals Upload-Length",
        default_endpoint=None, options=(), needs_token=False,
        sources="the tus 1.0.0 specification",
    ),
    PlatformInfo(
        name="post-api", title="tus plus a publish call and a status endpoint",
        bytes="tus 1.0.0", publish="POST publish_url with Idempotency-Key: <post id>",
        verification="GET status_url (a template with {post_id})",
        default_endpoint=None, options=("publish_url", "status_url"), needs_token=False,
        sources="steadypost's own convention (what steadypost.testing simulates)",
    ),
    PlatformInfo(
        name="tiktok", title="TikTok Content Posting API (Direct Post or upload to inbox)",
        bytes="chunked PUT (Content-Range) to a one-hour upload URL from video/init",
        publish="none: TikTok publishes (or sends to the inbox) once every chunk arrived",
        verification="POST status/fetch with the publish_id",
        default_endpoint=TIKTOK_API, options=tuple(TikTokOptions().to_config()),
        needs_token=True,
        sources="TikTok's developer docs; the URL lifetime, error codes, status values and "
        "fail reasons only from secondary sources",
    ),
    PlatformInfo(
        name="vimeo", title="Vimeo API (tus approach)",
        bytes="tus PATCH to the upload_link from POST /me/videos",
        publish="none: Vimeo transcodes once every byte arrived",
        verification="GET {uri}?fields=upload.status,transcode.status",
        default_endpoint=VIMEO_API, options=("account",), needs_token=True,
        sources="Vimeo's upload documentation and engineering blog",
    ),
    PlatformInfo(
        name="youtube", title="YouTube Data API v3 (resumable upload)",
        bytes="PUT chunks (multiples of 256 KiB, Content-Range) to the journaled session URI; "
        "308 + Range resumes; an empty PUT 'bytes */N' asks the offset",
        publish="none: the upload that completes is the video",
        verification="GET videos?part=status,processingDetails (processed: confirmed; "
        "rejected as duplicate: confirmed elsewhere; rejected/failed: failed)",
        default_endpoint=YOUTUBE_API, options=tuple(YouTubePlatform().config()),
        needs_token=True,
        sources="YouTube's resumable upload guide, videos and errors references, quota page "
        "(quotaExceeded waits for midnight Pacific, uploadLimitExceeded 24 h, per channel in "
        "the journal); assumed: the session may lapse any time (404/410: a new session unless "
        "the last byte was sent), no call tells the remaining quota",
    ),
    PlatformInfo(
        name="instagram", title="Instagram Reels (Graph API, resumable upload)",
        bytes="the whole file in one POST to rupload.facebook.com/ig-api-upload/{container} "
        "(offset 0, file_size; Authorization: OAuth)",
        publish="POST {ig_user_id}/media_publish?creation_id=... once the container is "
        "FINISHED and content_publishing_limit has room; never sent twice",
        verification="GET {container}?fields=status_code (PUBLISHED: confirmed; FINISHED: "
        "published then; ERROR: failed; EXPIRED: a new container)",
        default_endpoint=GRAPH_API, options=tuple(InstagramPlatform().config()),
        needs_token=True,
        sources="Meta's resumable-upload, ig-container, content_publishing_limit and error "
        "handling pages; the upload headers from public clients; assumed: no chunking or "
        "offset query (a failed upload is resent from byte 0), polling once a minute for up "
        "to 5 min (Threads' advice), a FINISHED container after a lost publish answer was "
        "not published",
    ),
    PlatformInfo(
        name="x", title="X (API v2 chunked media upload, then a post)",
        bytes="POST /2/media/upload INIT, APPEND segments of at most 5 MB (multipart, only a "
        "failed one resent, before expires_after_secs), FINALIZE, STATUS every "
        "check_after_secs",
        publish="POST /2/tweets with the media id; a lost answer is never answered by a "
        "second post",
        verification="GET /2/users/{id}/tweets: a recent post carrying this media key "
        "(an assumption: X documents no lookup after a lost create answer)",
        default_endpoint=X_API, options=tuple(XPlatform().config()), needs_token=True,
        sources="X's media upload quickstart and INIT/APPEND/FINALIZE/STATUS references, the "
        "manage-posts reference; assumed: no offset query (acknowledged segments are "
        "journaled), no idempotency key, the recent-posts scan after a lost answer",
    ),
)


def available() -> list[PlatformInfo]:
    """Every platform steadypost can post to, in a stable order."""
    return list(_INFOS)


def platform_for(
    name: str, config: Mapping[str, str], auth: HeaderPolicy | None = None,
    *, clock: Callable[[], float] = time.time,
) -> Platform:  # fmt: skip
    """Rebuild a platform adapter by ``name`` from its journaled ``config``.

    Raises :class:`~steadypost.errors.JournalError` for an unknown name or
    an unusable config.
    """
    auth = auth if auth is not None else HeaderPolicy()
    try:
        if name == TikTokPlatform.name:
            return TikTokPlatform.from_config(config, auth, clock=clock)
        if name == VimeoPlatform.name:
            return VimeoPlatform.from_config(config, auth, clock=clock)
        if name == XPlatform.name:
            return XPlatform.from_config(config, auth, clock=clock)
        if name == InstagramPlatform.name:
            return InstagramPlatform.from_config(config, auth, clock=clock)
        if name == YouTubePlatform.name:
            return YouTubePlatform.from_config(config, auth, clock=clock)
    except ValueError as exc:
        raise JournalError(f"a {name} post was journaled with an unusable config: {exc}") from exc
    return generic_platform_for(name, config, auth, clock=clock)
