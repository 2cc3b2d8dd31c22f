"""The journal: every post and what happened to it, written before each network call.

:class:`Journal` (in :mod:`.database`) is the public face; :mod:`.posts`,
:mod:`.leases` and :mod:`.owners` hold its SQL; :mod:`.codec` turns rows into
values; :mod:`.redact` keeps secrets out; :mod:`.migrations` numbers the
schema's steps. This is the only package that uses sqlite3.
"""

from steadypost.journal.database import (
    DEFAULT_BUSY_TIMEOUT_S,
    DEFAULT_LEASE_S,
    DEFAULT_RETENTION_S,
    EVENT_KINDS,
    AddResult,
    Journal,
    JournalCorruptError,
    PostExistsError,
    PostNotFoundError,
    SchemaTooNewError,
    describe_owner,
    make_owner,
    new_post_id,
    owner_pid,
    redact_url,
)

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_RETENTION_S",
    "EVENT_KINDS",
    "AddResult",
    "Journal",
    "JournalCorruptError",
    "PostExistsError",
    "PostNotFoundError",
    "SchemaTooNewError",
    "describe_owner",
    "make_owner",
    "new_post_id",
    "owner_pid",
    "redact_url",
]
