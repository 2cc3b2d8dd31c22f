"""Where the simulated tus server keeps upload bytes: memory (default) or a directory.

Both stores grow by appending and can roll back (truncate) a chunk whose
checksum did not match. Pass ``storage_dir=tmp_path`` to the simulator for
large files you do not want in memory.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

_READ_BLOCK = 1 << 20


class UploadStorage(Protocol):
    """The byte store behind the simulated tus server (one entry per upload id)."""

    def create(self, upload_id: str) -> None:
        """Start an empty upload."""

    def append(self, upload_id: str, data: bytes) -> None:
        """Add bytes at the end."""

    def truncate(self, upload_id: str, size: int) -> None:
        """Cut the upload back to ``size`` bytes."""

    def read(self, upload_id: str) -> bytes:
        """Every byte stored so far."""

    def sha256(self, upload_id: str) -> str:
        """Hex SHA-256 of the bytes stored so far."""

    def discard(self, upload_id: str) -> None:
        """Forget the upload and free its bytes (no error if unknown)."""


class MemoryStorage:
    """Uploads kept in one ``bytearray`` each."""

    def __init__(self) -> None:
        self._data: dict[str, bytearray] = {}
        self._lock = threading.Lock()

    def create(self, upload_id: str) -> None:
        with self._lock:
            self._data[upload_id] = bytearray()

    def append(self, upload_id: str, data: bytes) -> None:
        with self._lock:
            self._data[upload_id] += data

    def truncate(self, upload_id: str, size: int) -> None:
        with self._lock:
            del self._data[upload_id][size:]

    def read(self, upload_id: str) -> bytes:
        with self._lock:
            return bytes(self._data.get(upload_id, b""))

    def sha256(self, upload_id: str) -> str:
        with self._lock:
            return hashlib.sha256(self._data.get(upload_id, b"")).hexdigest()

    def discard(self, upload_id: str) -> None:
        with self._lock:
            self._data.pop(upload_id, None)


class DirectoryStorage:
    """Uploads kept as ``<upload id>.bin`` files in ``root`` (created if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.bin"

    def create(self, upload_id: str) -> None:
        with self._lock:
            self._path(upload_id).write_bytes(b"")

    def append(self, upload_id: str, data: bytes) -> None:
        with self._lock, self._path(upload_id).open("ab") as fh:
            fh.write(data)

    def truncate(self, upload_id: str, size: int) -> None:
        with self._lock:
            os.truncate(self._path(upload_id), size)

    def read(self, upload_id: str) -> bytes:
        with self._lock:
            path = self._path(upload_id)
            return path.read_bytes() if path.exists() else b""

    def sha256(self, upload_id: str) -> str:
        digest = hashlib.sha256()
        with self._lock:
            path = self._path(upload_id)
            if path.exists():
                with path.open("rb") as fh:
                    while block := fh.read(_READ_BLOCK):
                        digest.update(block)
        return digest.hexdigest()

    def discard(self, upload_id: str) -> None:
        with self._lock:
            self._path(upload_id).unlink(missing_ok=True)
