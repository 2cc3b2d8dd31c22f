"""TikTok's chunk rules, checked before any request: a pure planner.

From TikTok's Content Posting API *media transfer guide*:

* ``total_chunk_count`` is ``video_size / chunk_size`` rounded down;
* every chunk is at least 5 MB and at most 64 MB, except the final one,
  which takes the trailing bytes and may reach 128 MB;
* a video under 5 MB goes whole (``chunk_size`` = its size); a video over
  64 MB must go in several chunks;
* 1 to 1000 chunks, sent in order.

The guide's example: 50,000,123 bytes in 10,000,000-byte chunks is 5 chunks,
the last of 10,000,123 bytes. The guide does not say whether "MB" means
10^6 or 2^20 bytes, so the defaults satisfy both readings: chunks of at least
5 MiB (5,242,880 bytes) and at most 64,000,000 bytes, a final chunk of at
most 128,000,000 bytes.

:func:`plan_chunks` checks a given chunk size and raises
:class:`UnsupportedFileError` (a :class:`~steadypost.errors.FileProblemError`:
the post fails with the reason) when TikTok would refuse the plan;
:func:`choose_chunk_size` picks a valid size near a preferred one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from steadypost.errors import FileProblemError

MB = 1_000_000
MIB = 1024 * 1024

#: Where TikTok accepts the bytes: the types the media transfer guide names.
CONTENT_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm"}


class UnsupportedFileError(FileProblemError):
    """The file breaks a platform's documented upload rules (chunking, file type)."""


@dataclass(frozen=True, kw_only=True)
class ChunkRules:
    """TikTok's documented limits, in bytes (defaults satisfy "MB" read either way)."""

    min_chunk: int = 5 * MIB
    max_chunk: int = 64 * MB
    max_final_chunk: int = 128 * MB
    max_chunks: int = 1000


TIKTOK_RULES = ChunkRules()


@dataclass(frozen=True)
class Chunk:
    """Bytes ``first``..``last`` (inclusive) of the file: chunk number ``index`` (0-based)."""

    index: int
    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, total: int) -> str:
        """The ``Content-Range`` header value: ``bytes FIRST-LAST/TOTAL``."""
        return f"bytes {self.first}-{self.last}/{total}"


@dataclass(frozen=True)
class ChunkPlan:
    """What TikTok's init request declares, and the byte ranges that follow from it."""

    video_size: int
    chunk_size: int
    total_chunk_count: int

    def chunk(self, index: int) -> Chunk:
        """Chunk ``index``; the final one runs to the end of the file."""
        if not 0 <= index < self.total_chunk_count:
            raise IndexError(f"chunk {index} of {self.total_chunk_count}")
        first = index * self.chunk_size
        final = index == self.total_chunk_count - 1
        last = self.video_size - 1 if final else first + self.chunk_size - 1
        return Chunk(index, first, last)

    def index_at(self, offset: int) -> int:
        """The chunk that starts at byte ``offset`` (``total_chunk_count`` at the end)."""
        if offset >= self.video_size:
            return self.total_chunk_count
        index, rest = divmod(offset, self.chunk_size)
        if rest or index >= self.total_chunk_count:
            raise ValueError(f"byte {offset} is not where a chunk of this plan starts")
        return index

    def source_info(self) -> dict[str, object]:
        """The ``source_info`` object of TikTok's init request."""
        return {
            "source": "FILE_UPLOAD",
            "video_size": self.video_size,
            "chunk_size": self.chunk_size,
            "total_chunk_count": self.total_chunk_count,
        }


def _whole(video_size: int, chunk_size: int, rules: ChunkRules) -> bool:
    """A file under the minimum chunk, or one chunk covering a file of at most 64 MB."""
    return video_size < rules.min_chunk or video_size <= min(chunk_size, rules.max_chunk)


def plan_chunks(
    video_size: int, chunk_size: int, *, rules: ChunkRules = TIKTOK_RULES
) -> ChunkPlan:
    """TikTok's plan for ``video_size`` bytes in ``chunk_size`` pieces, or why it cannot be.

    A file under the minimum chunk goes whole, and so does a file of at most
    64 MB when ``chunk_size`` covers it. Raises :class:`UnsupportedFileError`.
    """
    if video_size <= 0:
        raise UnsupportedFileError("the file is empty: TikTok needs at least one byte of video")
    if _whole(video_size, chunk_size, rules):
        return ChunkPlan(video_size, video_size, 1)
    count = video_size // max(chunk_size, 1)
    if video_size > rules.max_chunk and count < 2:
        raise UnsupportedFileError(
            f"a {video_size:,}-byte video is over {rules.max_chunk:,} bytes, so TikTok needs it "
            f"in several chunks; {chunk_size:,}-byte chunks make only one"
        )
    if not rules.min_chunk <= chunk_size <= rules.max_chunk:
        raise UnsupportedFileError(
            f"a chunk size of {chunk_size:,} bytes is outside TikTok's limits "
            f"({rules.min_chunk:,} to {rules.max_chunk:,} bytes)"
        )
    if count > rules.max_chunks:
        smallest = video_size // (rules.max_chunks + 1) + 1
        raise UnsupportedFileError(
            f"{video_size:,} bytes in {chunk_size:,}-byte chunks is {count:,} chunks; TikTok "
            f"accepts at most {rules.max_chunks:,} (use chunks of at least {smallest:,} bytes)"
        )
    final = video_size - (count - 1) * chunk_size
    if final > rules.max_final_chunk:
        raise UnsupportedFileError(
            f"the final chunk would be {final:,} bytes; TikTok accepts at most "
            f"{rules.max_final_chunk:,}"
        )
    return ChunkPlan(video_size, chunk_size, count)


def choose_chunk_size(
    video_size: int, preferred: int, *, rules: ChunkRules = TIKTOK_RULES
) -> int:
    """A chunk size TikTok accepts for ``video_size``, as close to ``preferred`` as allowed.

    Clamped to the chunk limits, halved for files just over 64 MB (they need
    two chunks), raised so there are at most 1000 chunks. A file too large
    for any plan gets a size :func:`plan_chunks` then refuses with the reason.
    """
    if video_size <= 0 or _whole(video_size, preferred, rules):
        return max(video_size, 1)
    size = min(max(preferred, rules.min_chunk), rules.max_chunk)
    if video_size > rules.max_chunk:
        size = min(size, video_size // 2)
    return max(size, video_size // (rules.max_chunks + 1) + 1)


def content_type_for(path: str) -> str:
    """The ``Content-Type`` of the chunks: ``video/mp4``, ``video/quicktime`` or ``video/webm``."""
    ext = os.path.splitext(path)[1].lower()
    try:
        return CONTENT_TYPES[ext]
    except KeyError:
        raise UnsupportedFileError(
            f"{os.path.basename(path)}: TikTok takes MP4, MOV (QuickTime) or WebM videos; "
            f"rename or convert the file (its extension {ext or '(none)'} is not one of them)"
        ) from None
