"""Watch folders: a video dropped into one becomes a post, once it is complete, exactly once.

* A file is complete when its size and modification time (and its sidecar's)
  stayed the same across scans at least ``settle_s`` seconds apart: a file
  still being written or copied is never posted half-done. Empty files wait.
* Ignored: dotfiles, partial downloads and temporary files (``.part``,
  ``.partial``, ``.tmp``, ``.temp``, ``.crdownload``, ``.download``,
  ``.swp``, names ending in ``~``), sub-folders, and ``.json`` files (sidecars).
* A sidecar ``clip.mp4.json`` or ``clip.json`` beside ``clip.mp4`` gives the
  post's caption and metadata::

      {"caption": "Day one at the lake", "metadata": {"playlist": "summer"}}

  Top-level strings, numbers and booleans become metadata, and so does the
  ``metadata`` object. ``"platforms": ["tiktok", "youtube"]`` posts this
  video to those destinations (profile or platform names, as ``--to``
  takes), one post each, grouped, instead of the daemon's own. Write the
  sidecar before (or together with) the video.
* Each file is posted once, also across restarts: the journal remembers every
  watched file by its path, size and modification time, in the same
  transaction that adds its post. A file replaced by a new one (another size
  or time) is a new video and becomes a new post.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steadypost.journal import AddResult, Journal
from steadypost.models import Post

if TYPE_CHECKING:
    from steadypost._base import BaseUploader
    from steadypost.lifecycle.group import Target

WATCH_KIND = "watched-file"
"""The journal's host-state ``kind`` under which watched files are remembered."""
IGNORED_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp",
                    ".json")  # fmt: skip
DEFAULT_SETTLE_S = 3.0

log = logging.getLogger("steadypost.daemon")


def ignored(name: str) -> bool:
    """True for names the watcher never posts (hidden, partial, temporary, sidecars)."""
    return name.startswith(".") or name.endswith("~") or name.lower().endswith(IGNORED_SUFFIXES)


class SidecarError(ValueError):
    """A sidecar is not usable, or its video's destination is not configured: the file waits."""


@dataclass(frozen=True)
class Sidecar:
    """What a sidecar says about its video."""

    metadata: Mapping[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()
    """Where to post it (``--to`` names); empty: where the daemon posts new files."""


@dataclass(frozen=True)
class WatchedFile:
    """A file in a watch folder as one scan saw it."""

    path: Path
    size: int
    mtime_ns: int
    sidecar: Path | None = None

    @property
    def key(self) -> str:
        """Its identity in the journal: a hash of path, size and modification time."""
        text = f"{self.path}\0{self.size}\0{self.mtime_ns}"
        import hashlib  # here: `steadypost status` starts without OpenSSL

        return "watch:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class StabilityTracker:
    """Decides when a file has stopped changing (pure: the caller passes the time)."""

    settle_s: float = DEFAULT_SETTLE_S
    _seen: dict[str, tuple[tuple[object, ...], float]] = field(default_factory=dict)

    def observe(self, name: str, signature: tuple[object, ...], now: float) -> bool:
        """Record one scan's ``signature`` (size, mtime, ...); True once settled."""
        seen = self._seen.get(name)
        if seen is None or seen[0] != signature:
            self._seen[name] = (signature, now)
            return False
        return now - seen[1] >= self.settle_s

    def forget(self, name: str) -> None:
        """Start over with this file (its next scan is its first)."""
        self._seen.pop(name, None)

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget files that are gone."""
        keep = set(names)
        self._seen = {k: v for k, v in self._seen.items() if k in keep}

    @property
    def watching(self) -> int:
        """How many files are being watched for completion."""
        return len(self._seen)


def sidecar_for(path: Path) -> Path | None:
    """``clip.mp4.json`` or else ``clip.json`` beside ``clip.mp4``, if one exists."""
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate != path and candidate.is_file():
            return candidate
    return None


def _stamp(path: Path | None) -> tuple[int, int] | None:
    """Size and modification time of a sidecar, if it (still) exists."""
    try:
        st = path.stat() if path else None
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if st else None


def _metadata_value(key: str, value: object, where: Path) -> str:
    if not key or any(c in key for c in " ,\t\n"):
        raise SidecarError(f"{where}: metadata key {key!r} must be one word (no spaces, commas)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise SidecarError(f"{where}: {key!r} must be a string, a number or true/false")


def read_sidecar(path: Path) -> dict[str, str]:
    """The metadata in a sidecar file; :class:`SidecarError` if it is not usable."""
    return dict(read_sidecar_file(path).metadata)


def read_sidecar_file(path: Path) -> Sidecar:
    """A sidecar's metadata and platforms; :class:`SidecarError` if it is not usable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SidecarError(f"{path}: must hold a JSON object, e.g. {{\"caption\": \"...\"}}")
    nested = data.pop("metadata", {})
    if not isinstance(nested, dict):
        raise SidecarError(f"{path}: 'metadata' must be an object of key/value pairs")
    platforms = data.pop("platforms", [])
    if isinstance(platforms, str):
        platforms = [part.strip() for part in platforms.split(",")]
    if not isinstance(platforms, list) or not all(isinstance(p, str) and p for p in platforms):
        raise SidecarError(f"{path}: 'platforms' must be a list of names, e.g. "
                           '["tiktok", "youtube"]')  # fmt: skip
    metadata = {k: _metadata_value(k, v, path) for k, v in {**data, **nested}.items()}
    return Sidecar(metadata, tuple(dict.fromkeys(platforms)))


def add_to(
    uploader: BaseUploader[Any, Any], path: Path, targets: Sequence[Target], *,
    metadata: Mapping[str, str],
) -> list[AddResult]:  # fmt: skip
    """Journal (or join) a watched file's posts: one, or one per target, grouped.

    A target without an endpoint (and no default one) is a :class:`SidecarError`:
    the file waits, nothing is journaled.
    """
    try:
        if len(targets) == 1:
            [target] = targets
            return [uploader.add_or_join(path, target.resolved_endpoint(), metadata=metadata,
                                         platform=target.platform)]  # fmt: skip
        return uploader.add_group(path, targets, metadata=metadata)[1]
    except ValueError as exc:
        raise SidecarError(f"{path.name}: {exc}") from None


class WatchMemory:
    """Which watched files became posts, kept in the journal's host-state table."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def post_for(self, file: WatchedFile) -> str | None:
        """The id of the post this exact file became, or ``None``."""
        state = self.journal.get_host_state(file.key, WATCH_KIND)
        return str(state["post_id"]) if state and state.get("post_id") else None

    def add_once(
        self, file: WatchedFile, add: Callable[[], Sequence[Post]]
    ) -> Sequence[Post] | None:
        """Add the file's posts (one per destination) and remember the file, in one transaction.

        ``None`` if it was posted before. :class:`_ChangedWhileAddingError` if it
        changed while being added: then nothing is kept, and it is looked at
        again once it settles.
        """
        with self.journal.atomic():
            if self.post_for(file) is not None:
                return None
            posts = add()
            if not posts or any((p.identity.size, p.identity.mtime_ns) != (file.size, file.mtime_ns)
                                for p in posts):  # fmt: skip
                raise _ChangedWhileAddingError
            self.journal.put_host_state(file.key, WATCH_KIND, {
                "path": str(file.path), "size": file.size, "mtime_ns": file.mtime_ns,
                "post_id": posts[0].post_id, "post_ids": [p.post_id for p in posts],
            })  # fmt: skip
            return posts


class _ChangedWhileAddingError(Exception):
    pass


class FolderWatcher:
    """Scans folders and turns each complete, new file into a post."""

    def __init__(
        self, folders: Sequence[Path], journal: Journal, *, settle_s: float = DEFAULT_SETTLE_S
    ) -> None:
        self.folders = tuple(Path(os.path.abspath(f)) for f in folders)
        self.tracker = StabilityTracker(settle_s)
        self.memory = WatchMemory(journal)
        self._done: set[str] = set()
        self._complained: set[str] = set()

    def _once(self, what: str, message: str) -> None:
        if what not in self._complained:
            self._complained.add(what)
            log.warning(message)

    def scan(self, now: float) -> list[WatchedFile]:
        """The files that are complete now and were never posted."""
        ready: list[WatchedFile] = []
        present: list[str] = []
        for folder in self.folders:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                self._once(f"folder {folder}", f"cannot read watch folder {folder}: {exc}")
                continue
            self._complained.discard(f"folder {folder}")
            for entry in entries:
                file = self._look(entry)
                if file is None or file.key in self._done:
                    continue
                present.append(str(file.path))
                signature = (file.size, file.mtime_ns, _stamp(file.sidecar))
                if file.size and self.tracker.observe(str(file.path), signature, now):
                    if self.memory.post_for(file) is None:
                        ready.append(file)
                    else:
                        self._done.add(file.key)
        self.tracker.keep_only(present)
        return ready

    @staticmethod
    def _look(entry: os.DirEntry[str]) -> WatchedFile | None:
        if ignored(entry.name):
            return None
        try:
            if not entry.is_file():
                return None
            st = entry.stat()
        except OSError:  # gone since the listing
            return None
        path = Path(entry.path)
        return WatchedFile(path, st.st_size, st.st_mtime_ns, sidecar_for(path))

    def post(
        self, file: WatchedFile, add: Callable[[Path, Sidecar], Sequence[Post]]
    ) -> Sequence[Post] | None:
        """Add the posts of a complete file (``add`` gets what its sidecar says).

        ``add`` raises :class:`SidecarError` for a sidecar it cannot follow
        (a destination nobody configured): the file then waits until the
        sidecar is fixed, and nothing is journaled.
        """
        try:
            sidecar = read_sidecar_file(file.sidecar) if file.sidecar else Sidecar()
            posts = self.memory.add_once(file, lambda: add(file.path, sidecar))
        except SidecarError as exc:
            self._once(f"sidecar {file.key}", f"{exc}; {file.path.name} waits until it is fixed")
            return None
        except _ChangedWhileAddingError:
            self.tracker.forget(str(file.path))  # watch it settle again
            return None
        self._done.add(file.key)
        return posts
