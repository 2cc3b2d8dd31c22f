"""Plain-value helpers for :mod:`steadypost.journal`: rows, JSON, fields and ids.

Nothing here touches a database or the disk; the journal module owns all of that.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from steadypost.journal.redact import redact_text
from steadypost.models import FileIdentity, JournalEvent, Post, PostState, epoch, utc
from steadypost.origins import origin_of

POST_COLUMNS: tuple[str, ...] = (
    "post_id",
    "platform",
    "endpoint",
    "path",
    "size",
    "mtime_ns",
    "sha256",
    "metadata",
    "state",
    "upload_url",
    "offset",
    "attempts",
    "next_attempt_at",
    "last_error",
    "lease_owner",
    "lease_expires_at",
    "created_at",
    "updated_at",
    "upload_expires_at",
    "extra",
    "dev",
    "inode",
    "ctime_ns",
    "bytes_sent",
    "sent_to",
    "lease_epoch",
    "upload_host",
    "shared_prefix",
)
SELECT_POSTS = "SELECT " + ", ".join(f'"{c}"' for c in POST_COLUMNS) + " FROM posts"  # noqa: S608
SELECT_EVENTS = "SELECT event_id, post_id, at, kind, data FROM events"

#: Fields ``Journal.transition`` may change along with the state.
TRANSITION_FIELDS = frozenset(
    {
        "upload_url",
        "offset",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sha256",
        "upload_expires_at",
        "extra",
        "size",
        "mtime_ns",
        "dev",
        "inode",
        "ctime_ns",
        "bytes_sent",
        "sent_to",
    }
)
#: Fields ``Journal.checkpoint`` may change while an upload holds its lease.
CHECKPOINT_FIELDS = frozenset(
    {"upload_url", "offset", "sha256", "upload_expires_at", "extra", "attempts",
     "bytes_sent", "sent_to", "dev", "inode", "ctime_ns"}
)  # fmt: skip

MAX_ERROR_CHARS = 4000
_MAX_POST_ID_CHARS = 128


# --- JSON -------------------------------------------------------------------------


def _json_default(obj: object) -> object:
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def dumps(value: Mapping[str, Any]) -> str:
    """Compact, key-sorted JSON of an object; ``ValueError`` for anything JSON cannot hold."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping (a JSON object), not {type(value).__name__}")
    try:
        return json.dumps(
            value,
            default=_json_default,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except TypeError as exc:
        raise ValueError(f"not JSON-serialisable: {exc}") from exc


def freeze(value: Any) -> Any:
    """Deep read-only copy of decoded JSON: dicts become mapping proxies, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def loads_frozen(text: str) -> Mapping[str, Any]:
    value = freeze(json.loads(text))
    if not isinstance(value, Mapping):
        raise ValueError("expected a JSON object")
    return value


# --- rows ---------------------------------------------------------------------------


def post_from_row(row: Sequence[Any]) -> Post:
    r = dict(zip(POST_COLUMNS, row, strict=True))
    return Post(
        post_id=r["post_id"],
        platform=r["platform"],
        endpoint=r["endpoint"],
        path=r["path"],
        identity=FileIdentity(
            size=r["size"], mtime_ns=r["mtime_ns"], sha256=r["sha256"],
            dev=from_u64(r["dev"]), inode=from_u64(r["inode"]), ctime_ns=r["ctime_ns"],
        ),
        state=PostState(r["state"]),
        metadata=loads_frozen(r["metadata"]),
        upload_url=r["upload_url"],
        offset=r["offset"],
        attempts=r["attempts"],
        # Epoch seconds as stored: Post keeps them exact and shows them as UTC datetimes.
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        lease_owner=r["lease_owner"],
        lease_expires_at=r["lease_expires_at"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        upload_expires_at=r["upload_expires_at"],
        extra=loads_frozen(r["extra"]),
        bytes_sent=r["bytes_sent"],
        sent_to=r["sent_to"],
        lease_epoch=r["lease_epoch"],
        upload_host=r["upload_host"],
        shared_prefix=r["shared_prefix"],
    )


def event_from_row(row: Sequence[Any]) -> JournalEvent:
    event_id, post_id, at, kind, data = row
    return JournalEvent(
        event_id=event_id, post_id=post_id, at=at, kind=kind, data=loads_frozen(data)
    )


# --- validation ---------------------------------------------------------------------


def non_negative(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, not {value!r}")
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {value!r}")
    return value


def _time(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # a Post's own (aware) time given back
        return epoch(utc(value, name))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be epoch seconds or None, not {value!r}")
    return float(value)


def _text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a str or None, not {type(value).__name__}")
    return value


_U64 = 1 << 64


def to_u64(name: str, value: Any) -> int | None:
    """An unsigned 64-bit number (a device or inode number) as SQLite's signed INTEGER."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
        raise ValueError(f"{name} must be an unsigned 64-bit int or None, not {value!r}")
    return value - _U64 if value >= _U64 // 2 else value


def from_u64(value: int | None) -> int | None:
    return None if value is None else value % _U64


def _optional(convert: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else convert(name, value)


def sha256_hex(value: Any) -> str | None:
    text = _text("sha256", value)
    if text is None:
        return None
    text = text.lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"sha256 must be 64 hex digits, not {value!r}")
    return text


_CONVERTERS: Mapping[str, Callable[[str, Any], Any]] = MappingProxyType(
    {
        "upload_url": _text,
        "offset": non_negative,
        "attempts": non_negative,
        "size": non_negative,
        "mtime_ns": _int,
        "dev": to_u64,
        "inode": to_u64,
        "ctime_ns": _optional(_int),
        "bytes_sent": non_negative,
        "sent_to": _optional(non_negative),
        "next_attempt_at": _time,
        "upload_expires_at": _time,
        "last_error": lambda n, v: None
        if v is None
        else redact_text(str(v))[:MAX_ERROR_CHARS],
        "sha256": lambda n, v: sha256_hex(v),
        "extra": lambda n, v: dumps(v if v is not None else {}),
    }
)


def field_values(
    fields: Mapping[str, Any], allowed: frozenset[str], *, what: str
) -> dict[str, Any]:
    """Validate caller-supplied post fields and convert them to column values.

    Unknown names raise ``TypeError`` (like an unexpected keyword argument); bad
    values raise ``ValueError``. ``last_error`` is stored with secrets redacted.
    """
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise TypeError(f"{what}() cannot set {', '.join(unknown)}; allowed: {sorted(allowed)}")
    return {name: _CONVERTERS[name](name, value) for name, value in fields.items()}


def metadata_json(metadata: Mapping[str, str]) -> str:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"metadata must map str to str, got {key!r}: {value!r}")
    return dumps(metadata)


def check_post_id(post_id: str) -> str:
    if not isinstance(post_id, str) or not post_id or len(post_id) > _MAX_POST_ID_CHARS:
        raise ValueError(f"post_id must be a non-empty str of at most 128 chars: {post_id!r}")
    if not post_id.isprintable() or post_id.strip() != post_id:
        raise ValueError(f"post_id must be printable without surrounding spaces: {post_id!r}")
    return post_id


# --- ids ----------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_id_lock = threading.Lock()
_last_id: tuple[int, int, int] = (0, -1, 0)  # (pid, millis, random): reset in a forked child


def new_post_id(*, clock: Callable[[], float] = time.time) -> str:
    """A new ULID-style post id: 26 Crockford base32 chars that sort by creation time.

    48 bits of milliseconds from ``clock`` then 80 random bits from ``os.urandom``.
    Within one process ids are strictly increasing, even for many ids in the same
    millisecond or a clock that steps back (the random part is incremented then).
    Use it as the idempotency key sent to platforms that accept one.
    """
    global _last_id
    millis = max(0, int(clock() * 1000)) & ((1 << 48) - 1)
    with _id_lock:
        pid = os.getpid()
        last_pid, last_ms, last_rand = _last_id
        if pid == last_pid and millis <= last_ms:
            millis, rand = last_ms, last_rand + 1
            if rand >> _RANDOM_BITS:  # 2**80 ids in one millisecond: borrow the next one
                millis, rand = millis + 1, int.from_bytes(os.urandom(10), "big")
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_id = (pid, millis, rand)
    value = (millis << _RANDOM_BITS) | rand
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


# --- one post per file, site and account ---------------------------------------------


def account_of(extra: Mapping[str, Any] | None) -> str:
    """The platform adapter's ``account`` label journaled in a post's ``extra`` (or ``""``)."""
    config = (extra or {}).get("platform")
    account = config.get("account") if isinstance(config, Mapping) else None
    return account if isinstance(account, str) else ""


def file_key(
    *, path: str, identity: FileIdentity, endpoint: str, platform: str, account: str
) -> str:
    """The key of "one post per (file, site, account)": a SHA-256 hex digest.

    Of the file's real path (symlinks resolved) and identity (size, mtime and,
    where known, device, inode and status-change time, never the SHA-256 of
    its bytes, which a new post does not know yet), the endpoint's origin, the
    platform's name and the adapter's ``account`` label. Tokens are not part
    of it: a refreshed or rotated token is the same account, and must not
    lead to a second post. Stored in ``posts.file_key``; migration 4 computed
    it for older posts, so changing it needs a migration that recomputes it.
    """
    parts = {
        "path": os.path.normcase(os.path.realpath(path)),
        "size": identity.size, "mtime_ns": identity.mtime_ns, "dev": identity.dev,
        "inode": identity.inode, "ctime_ns": identity.ctime_ns,
        "site": origin_of(endpoint), "platform": platform, "account": account,
    }  # fmt: skip
    import hashlib  # here: loading OpenSSL costs `steadypost list` 2 ms at start-up

    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))  # ASCII: escapes any path
    return hashlib.sha256(text.encode("ascii")).hexdigest()
