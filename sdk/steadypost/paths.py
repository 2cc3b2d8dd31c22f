"""Where steadypost keeps its files on the user's machine.

Nothing here creates a directory or touches the disk: these functions only
answer *where*. :class:`steadypost.journal.Journal` creates the data directory
(mode 0700) when it opens the journal.

Two environment variables override the platform defaults, which is handy for
tests, portable installs and running several isolated daemons:

``STEADYPOST_HOME``
    The data directory (the journal lives here).
``STEADYPOST_CONFIG_DIR``
    The configuration directory.

Otherwise the directories come from :mod:`platformdirs`, e.g. on Linux
``~/.local/share/steadypost`` and ``~/.config/steadypost``; on macOS
``~/Library/Application Support/steadypost``; on Windows
``%LOCALAPPDATA%\\steadypost``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "steadypost"
HOME_ENV = "STEADYPOST_HOME"
CONFIG_DIR_ENV = "STEADYPOST_CONFIG_DIR"
JOURNAL_FILENAME = "journal.sqlite3"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name, "")
    if not value:
        return None
    return Path(os.path.abspath(os.path.expanduser(value)))


def _linux_dir(env_var: str, default: str) -> Path | None:
    """platformdirs' answer on Linux, without importing it (it costs ``list`` 4 ms at start).

    ``$XDG_DATA_HOME`` (or ``$XDG_CONFIG_HOME``) when it is an absolute path, else
    ``~/.local/share`` (``~/.config``); ``None`` (ask platformdirs) where it would take
    more than that: another OS, or no absolute ``$HOME``. tests/journal check that
    both give the same folder.
    """
    if not sys.platform.startswith("linux"):
        return None
    xdg = os.environ.get(env_var, "")
    if os.path.isabs(xdg):
        return Path(xdg, APP_NAME)
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        return None
    return Path(home.rstrip("/") or "/", default, APP_NAME)


def data_dir() -> Path:
    """The directory holding the journal: ``$STEADYPOST_HOME`` or the user data dir."""
    found = _from_env(HOME_ENV) or _linux_dir("XDG_DATA_HOME", ".local/share")
    if found is not None:
        return found
    import platformdirs  # here: most runs never need it

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """The configuration directory: ``$STEADYPOST_CONFIG_DIR`` or the user config dir."""
    found = _from_env(CONFIG_DIR_ENV) or _linux_dir("XDG_CONFIG_HOME", ".config")
    if found is not None:
        return found
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_journal_path() -> Path:
    """The journal used when none is given: ``data_dir() / "journal.sqlite3"``."""
    return data_dir() / JOURNAL_FILENAME
