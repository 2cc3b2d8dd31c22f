"""Helpers for tests that run on both journal backends (see ``journal_target`` in conftest)."""

from __future__ import annotations

import sqlite3
from typing import Any


def is_postgres(target: str) -> bool:
    return target.startswith("postgresql://")


def raw_execute(target: str, sql: str) -> Any:
    """Run ``sql`` straight on the journal's database, bypassing steadypost; its result rows."""
    if is_postgres(target):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def raw_error_types(target: str) -> tuple[type[BaseException], ...]:
    """What the database driver raises when a statement is refused."""
    if is_postgres(target):
        import psycopg

        return (psycopg.Error,)
    return (sqlite3.Error,)


def child_env() -> dict[str, str]:
    """The environment for a child Python process: this checkout's SDK first on its path."""
    import os
    from pathlib import Path

    import steadypost

    sdk = str(Path(steadypost.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [sdk, env.get("PYTHONPATH")]))
    return env
