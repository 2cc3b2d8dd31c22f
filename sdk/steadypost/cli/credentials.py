"""Where a profile's token is kept: the OS keyring, an environment variable, or config.toml.

``steadypost login --profile travel`` keeps the token in the OS keyring (the
``keyring`` library: the macOS Keychain, Windows Credential Manager, the
Secret Service of GNOME/KDE), under the service ``steadypost`` and the
profile's name, and writes ``token_keyring = true`` into the profile. Where
no keyring works (a server without a desktop session), the token goes into
config.toml, private to the user (0600), and login says so. ``logout``
removes it from wherever it is.

The other sources work as before: ``token_env`` (a variable the profile
names), ``token`` in config.toml, ``$STEADYPOST_TOKEN``. Each resolved token
carries where it came from, so a refused token (401/403) can be named.

``keyring`` is imported only when a profile uses it: ``steadypost list``
never loads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE = "steadypost"
"""The keyring service every steadypost token is stored under (the user name: the profile)."""
KEYRING_KEY = "token_keyring"
"""The profile key saying its token is in the keyring."""


class KeyringUnavailableError(Exception):
    """No usable OS keyring here (none installed, or none that works without a desktop)."""


@dataclass(frozen=True)
class Token:
    """A token and, in words, where it came from ("the OS keyring (profile travel)")."""

    value: str
    source: str


def _keyring() -> Any:
    try:
        import keyring
        import keyring.errors
    except ImportError as exc:  # pragma: no cover - keyring is a dependency
        raise KeyringUnavailableError("the keyring library is not installed") from exc
    backend = keyring.get_keyring()
    if _unusable(backend):
        raise KeyringUnavailableError(
            f"no OS keyring works here ({type(backend).__name__}); on Linux it needs a "
            "desktop session's Secret Service (GNOME Keyring, KWallet)"
        )
    return keyring


def _unusable(backend: Any) -> bool:
    from keyring.backends import fail

    priority = getattr(backend, "priority", 1)
    return isinstance(backend, fail.Keyring) or (isinstance(priority, (int, float))
                                                 and priority <= 0)  # fmt: skip


def backend_name() -> str:
    """The keyring in use, as people call it ("SecretService Keyring", "macOS Keyring")."""
    backend = _keyring().get_keyring()
    return str(getattr(backend, "name", type(backend).__name__))


def keyring_token(profile: str) -> str | None:
    """The token the keyring holds for ``profile`` (``None``: none there)."""
    kr = _keyring()
    try:
        value = kr.get_password(SERVICE, profile)
    except kr.errors.KeyringError as exc:
        raise KeyringUnavailableError(f"the OS keyring did not answer: {exc}") from exc
    return value or None


def store_in_keyring(profile: str, token: str) -> str:
    """Keep ``token`` for ``profile`` in the keyring; returns the keyring's name."""
    kr = _keyring()
    try:
        kr.set_password(SERVICE, profile, token)
    except kr.errors.KeyringError as exc:
        raise KeyringUnavailableError(f"the OS keyring refused the token: {exc}") from exc
    return backend_name()


def delete_from_keyring(profile: str) -> bool:
    """Forget ``profile``'s token in the keyring; False if it held none (or there is none)."""
    try:
        kr = _keyring()
    except KeyringUnavailableError:
        return False
    try:
        kr.delete_password(SERVICE, profile)
    except kr.errors.PasswordDeleteError:
        return False
    except kr.errors.KeyringError as exc:
        raise KeyringUnavailableError(f"the OS keyring did not answer: {exc}") from exc
    return True


# --- config.toml, edited in place (comments and order kept) ---------------------------------


def save_profile(path: Path, name: str, values: dict[str, Any], *, drop: tuple[str, ...] = (),
                 make_default: bool = False) -> None:  # fmt: skip
    """Set ``values`` (and remove ``drop``) in ``[profiles.NAME]`` of the file at ``path``.

    The rest of the file is kept as it was, comments included. The file is written
    whole to a temporary file beside it, private to the user (0600), then renamed over
    the old one, so a crash never leaves half a config.
    """
    import tomlkit

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(text)
    profiles = document.setdefault("profiles", tomlkit.table(is_super_table=True))
    if name not in profiles:
        profiles[name] = tomlkit.table()
    table = profiles[name]
    for key in drop:
        table.pop(key, None)
    for key, value in values.items():
        table[key] = value
    if make_default and "default_profile" not in document:
        document.add("default_profile", name)  # (tomlkit keeps top-level keys first)
    _write_private(path, tomlkit.dumps(document))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    os.chmod(path, 0o600)


__all__ = [
    "KEYRING_KEY",
    "SERVICE",
    "KeyringUnavailableError",
    "Token",
    "backend_name",
    "delete_from_keyring",
    "keyring_token",
    "save_profile",
    "store_in_keyring",
]
