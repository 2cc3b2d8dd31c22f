"""What one run of a command shares: settings, the journal, uploaders and the two consoles.

:class:`Runtime` says how the CLI reaches the world: the real clock, the
default journal and real HTTP. Tests hand in their own (a fake clock, the
in-process platform simulator) with ``CliRunner().invoke(cli, args,
obj=Runtime(...))``; it is not a command-line option.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.logging import RichHandler
from rich.markup import escape

from steadypost import Journal, Post, Uploader
from steadypost.cli.config import (
    DEFAULT_PLATFORM,
    ConfigError,
    ConfigFile,
    Settings,
    load_config,
    resolve,
    select_profile,
)
from steadypost.cli.exitcodes import ExitCode
from steadypost.cli.output import make_console, print_posts
from steadypost.cli.progress import Display
from steadypost.errors import JournalError
from steadypost.journal import JOURNAL_ENV, PostNotFoundError
from steadypost.platforms import platform_for
from steadypost.platforms.base import Platform


@dataclass
class Runtime:
    """The clock, journal location and uploader options the commands use."""

    clock: Callable[[], float] = time.time
    journal_path: Path | str | None = None
    """``None``: ``--journal``, ``$STEADYPOST_JOURNAL``, the profile's ``journal``, or the
    default file (in ``$STEADYPOST_HOME`` or the user data dir)."""
    uploader_options: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``Uploader(...)`` keyword arguments, e.g. ``client``, ``sleep``, ``retry``."""
    sleep: Callable[[float], None] | None = None
    """How a command waits for a recovering platform between tries (and the uploader's
    sleep unless ``uploader_options`` has one). ``None``: ``uploader_options["sleep"]``
    if given, else ``time.sleep`` (which Ctrl-C interrupts)."""


class CliError(Exception):
    """A one-line error for the user, with the exit code it stands for."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


def _same(kept: str, given: str) -> bool:
    """Whether the adapter kept an option as given (``"60"`` and ``"60.0"`` are the same)."""
    if kept == given:
        return True
    try:
        return float(kept) == float(given)
    except ValueError:
        return False


class App:
    """The shared state of one command run (``ctx.obj``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.profile: str | None = None
        self.journal_target: str | None = None
        """``--journal``: a path or URL."""
        self.debug = False
        self.out = make_console(stderr=False)
        self.err = make_console(stderr=True)
        self._journal: Journal | None = None
        self._config: ConfigFile | None = None
        self._uploaders: dict[tuple[tuple[str, str], ...], Uploader] = {}
        self._saved_logging: tuple[list[logging.Handler], int, bool] | None = None

    def now(self) -> float:
        return self.runtime.clock()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the runtime's sleeper (a fake clock's in tests)."""
        sleep = self.runtime.sleep or self.runtime.uploader_options.get("sleep") or time.sleep
        sleep(seconds)

    # --- configuration -----------------------------------------------------------------

    def config(self) -> ConfigFile:
        if self._config is None:
            try:
                self._config = load_config()
            except ConfigError as exc:
                raise CliError(str(exc), ExitCode.USAGE) from None
        return self._config

    def settings(
        self,
        *,
        endpoint: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        metadata: Sequence[tuple[str, str]] = (),
        chunk_size: int | None = None,
        platform: str | None = None,
        platform_options: Sequence[tuple[str, str]] = (),
    ) -> Settings:
        """The profile, the environment and these flags, combined (warnings shown)."""
        try:
            settings = resolve(
                self.config(), profile_name=self.profile, endpoint=endpoint,
                headers=headers, metadata=metadata, chunk_size=chunk_size,
                platform=platform, platform_options=platform_options,
            )  # fmt: skip
        except ConfigError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None
        for warning in settings.warnings:
            self.warn(warning)
        return settings

    def platform(self, settings: Settings) -> Platform | None:
        """The adapter new posts get (``None``: plain tus, the uploader's default).

        A usage error (exit 2) when the options do not make a usable adapter.
        """
        name, options = settings.platform, settings.platform_options
        if name == DEFAULT_PLATFORM and not options:
            return None
        try:
            adapter = platform_for(name, options, clock=self.runtime.clock)
        except JournalError as exc:
            cause = exc.__cause__
            if isinstance(cause, KeyError):
                why = f"it needs the option {cause.args[0]} (--platform-option KEY=VALUE)"
            else:
                why = str(cause) if cause is not None else str(exc)
            raise CliError(f"platform {name}: {why}", ExitCode.USAGE) from None
        kept = adapter.config()
        for key, value in options.items():
            if key in kept and not _same(kept[key], value):
                raise CliError(f"platform {name}: {key}={value!r} is not a value it takes",
                               ExitCode.USAGE)  # fmt: skip
        return adapter

    # --- the journal and uploaders -------------------------------------------------------

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            target = (self.runtime.journal_path or self.journal_target
                      or os.environ.get(JOURNAL_ENV) or self._profile_journal())  # fmt: skip
            self._journal = Journal(target, clock=self.runtime.clock)
        return self._journal

    def _profile_journal(self) -> str | None:
        try:
            profile = select_profile(self.config(), self.profile, os.environ)
        except ConfigError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None
        return profile.journal if profile is not None else None

    def uploader(self, headers: Mapping[str, str]) -> Uploader:
        """An uploader sending ``headers`` (one per distinct set, closed with the app)."""
        key = tuple(sorted(headers.items()))
        if key not in self._uploaders:
            options: dict[str, Any] = {"clock": self.runtime.clock}
            if self.runtime.sleep is not None:
                options["sleep"] = self.runtime.sleep
            options.update(self.runtime.uploader_options)
            self._uploaders[key] = Uploader(headers=headers, journal=self.journal, **options)
        return self._uploaders[key]

    def find_post(self, ref: str) -> Post:
        """The post with this id, or the only one whose id starts with it."""
        try:
            return self.journal.get(ref)
        except PostNotFoundError:
            pass
        wanted = ref.strip().upper()
        matches = [p for p in self.journal.list() if p.post_id.upper().startswith(wanted)]
        if len(matches) == 1 and wanted:
            return matches[0]
        if not matches or not wanted:
            where = self.journal.location
            raise CliError(f"no post {ref!r} in {where} (`steadypost list` shows them)",
                           ExitCode.USAGE)  # fmt: skip
        raise CliError(f"{ref!r} starts {len(matches)} post ids; give more of it", ExitCode.USAGE)

    # --- logging ---------------------------------------------------------------------------

    def setup_logging(self) -> None:
        """The SDK's log on stderr: warnings only, or everything with ``--debug``."""
        logger = logging.getLogger("steadypost")
        if self._saved_logging is None:
            self._saved_logging = (list(logger.handlers), logger.level, logger.propagate)
        handler = RichHandler(console=self.err, show_time=False, show_path=False, markup=False)
        logger.handlers[:] = [handler]
        logger.propagate = False
        self.set_debug(self.debug)

    def set_debug(self, on: bool) -> None:
        self.debug = on
        logging.getLogger("steadypost").setLevel(logging.DEBUG if on else logging.WARNING)

    def close(self) -> None:
        """Close uploaders and the journal; give the ``steadypost`` logger back as it was."""
        if self._saved_logging is not None:
            logger = logging.getLogger("steadypost")
            logger.handlers[:], level, logger.propagate = self._saved_logging
            logger.setLevel(level)
            self._saved_logging = None
        for uploader in self._uploaders.values():
            uploader.close()
        self._uploaders.clear()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # --- output ----------------------------------------------------------------------------

    def display(self) -> Display:
        return Display(self.err, clock=self.runtime.clock)

    def print_posts(self, posts: Iterable[Post], *, as_json: bool) -> None:
        print_posts(self.out, posts, as_json=as_json, now=self.now())

    def note(self, text: str) -> None:
        self.err.print(escape(text))

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(text)}")
