"""What one run of a command shares: settings, the journal, uploaders and the two consoles.

:class:`Runtime` says how the CLI reaches the world: the real clock, the
default journal and real HTTP. Tests hand in their own (a fake clock, the
in-process platform simulator) with ``CliRunner().invoke(cli, args,
obj=Runtime(...))``; it is not a command-line option.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steadypost.cli.exitcodes import ExitCode
from steadypost.cli.term import Term
from steadypost.errors import JournalError, PostNotFoundError

if TYPE_CHECKING:  # imported when first used: `steadypost list` needs none of them
    from rich.console import Console

    from steadypost import Journal, Post, Uploader
    from steadypost.cli import logs
    from steadypost.cli.config import ConfigFile, Settings
    from steadypost.cli.progress import Display
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
        self.verbosity = 0
        """``-q``: -1 (results and errors only), ``-v``: 1, ``-vv``: 2 (``--debug`` also 2)."""
        self.out = Term()
        self.err = Term(stderr=True)
        self._rich_err: Console | None = None
        self._journal: Journal | None = None
        self._config: ConfigFile | None = None
        self._uploaders: dict[tuple[object, ...], Uploader] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._min_rate: float | None = None
        self._handler: logs.CliHandler | None = None
        self._saved_logging: tuple[list[logging.Handler], int, bool] | None = None

    def now(self) -> float:
        return self.runtime.clock()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the runtime's sleeper (a fake clock's in tests).

        The real wait ends early when :meth:`stop_uploads` is called (Ctrl-C during
        ``-j``), as it does in the main thread on Ctrl-C.
        """
        sleep = self.runtime.sleep or self.runtime.uploader_options.get("sleep")
        if sleep is not None:
            sleep(seconds)
        else:
            self._stop.wait(seconds)

    def limit_bandwidth(self, rate: float | None, *, jobs: int = 1) -> None:
        """``--bwlimit``: cap the process at ``rate`` bytes/s (``None``: no cap) until closed.

        Each request body is then given at least half its share of the cap before its
        deadline counts it as too slow (``Timeouts.min_rate``), never less than it gets.
        """
        from steadypost.drivers import bandwidth
        from steadypost.models import DEFAULT_MIN_RATE

        bandwidth.set_limit(rate)
        self._min_rate = None if rate is None else min(DEFAULT_MIN_RATE, rate / (2 * jobs))

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop_uploads` was called."""
        return self._stop.is_set()

    def stop_uploads(self) -> None:
        """Ctrl-C during ``-j``: every uploader stops at its next block or wait."""
        self._stop.set()
        with self._lock:
            uploaders = list(self._uploaders.values())
        for uploader in uploaders:
            uploader.cancel()

    def ask_offset(self, post: Post, headers: Mapping[str, str]) -> int | None:
        """The bytes of ``post`` the server holds, asked now (one quick tus ``HEAD``).

        ``None`` when it cannot be known in a few seconds (no tus upload, no answer).
        """
        from steadypost import SteadypostError, Timeouts, Uploader

        options: dict[str, Any] = {"clock": self.runtime.clock, **self.runtime.uploader_options}
        options["timeouts"] = Timeouts(connect=3, read=3, write=3, pool=3, exchange=5)
        try:
            with Uploader(headers=headers, journal=self.journal, **options) as uploader:
                return uploader.server_offset(post.post_id)
        except (SteadypostError, KeyboardInterrupt):
            return None

    # --- configuration -----------------------------------------------------------------

    def config(self) -> ConfigFile:
        from steadypost.cli.config import ConfigError, load_config

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
        from steadypost.cli.config import ConfigError, resolve

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
        from steadypost.cli.config import DEFAULT_PLATFORM
        from steadypost.platforms import platform_for

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
        with self._lock:
            if self._journal is None:
                from steadypost.journal import JOURNAL_ENV, Journal

                target = (self.runtime.journal_path or self.journal_target
                          or os.environ.get(JOURNAL_ENV) or self._profile_journal())  # fmt: skip
                self._journal = Journal(target, clock=self.runtime.clock)
            return self._journal

    def _profile_journal(self) -> str | None:
        """The profile's ``journal`` key, if config.toml has one."""
        from steadypost.paths import config_dir

        if self._config is None and not (config_dir() / "config.toml").exists():
            return None  # no config file: `steadypost list` starts without the config code
        from steadypost.cli.config import ConfigError, select_profile

        try:
            profile = select_profile(self.config(), self.profile, os.environ)
        except ConfigError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None
        return profile.journal if profile is not None else None

    def uploader(self, headers: Mapping[str, str], *, worker: object = None) -> Uploader:
        """An uploader sending ``headers`` (one per distinct set and worker, closed with the app).

        ``worker``: a key of the thread that uses it (``-j``); an uploader serves one
        upload at a time, so parallel uploads each get their own.
        """
        from steadypost import Uploader

        journal = self.journal
        key = (worker, *sorted(headers.items()))
        with self._lock:
            if key not in self._uploaders:
                options: dict[str, Any] = {"clock": self.runtime.clock}
                if self.runtime.sleep is not None:
                    options["sleep"] = self.runtime.sleep
                if self._min_rate is not None:
                    from steadypost import Timeouts

                    options["timeouts"] = Timeouts(min_rate=self._min_rate)
                options.update(self.runtime.uploader_options)
                self._uploaders[key] = Uploader(headers=headers, journal=journal, **options)
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

    # --- logging and verbosity -----------------------------------------------------------

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    def setup_logging(self) -> None:
        """The SDK's log on stderr: warnings (``-v`` info, ``-vv``/``--debug`` everything).

        Each retry is one line: the wait's (see :mod:`steadypost.cli.logs`).
        """
        from steadypost.cli import logs

        logger = logging.getLogger("steadypost")
        if self._saved_logging is None:
            self._saved_logging = (list(logger.handlers), logger.level, logger.propagate)
        self._handler = logs.CliHandler(self.err)
        logger.handlers[:] = [self._handler]
        logger.propagate = False
        self.set_verbosity(self.verbosity)

    def set_debug(self, on: bool) -> None:
        self.debug = on
        if on:
            self.set_verbosity(max(self.verbosity, 2))

    def set_verbosity(self, level: int) -> None:
        """-1 quiet, 0 normal, 1 verbose, 2 everything (every request)."""
        self.verbosity = level
        from steadypost.cli import logs

        self.err.quiet = level < 0
        threshold = logs.threshold(level)
        if self._handler is not None:
            self._handler.threshold = threshold
        logging.getLogger("steadypost").setLevel(min(threshold, logging.INFO))

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
        if self._min_rate is not None:
            self.limit_bandwidth(None)
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # --- output ----------------------------------------------------------------------------

    def rich_err(self) -> Console:
        """A rich console on stderr (progress bars, the demo); loaded on first use."""
        if self._rich_err is None:
            from steadypost.cli.output import make_console

            self._rich_err = make_console(stderr=True)
            if self.quiet:
                self._rich_err.quiet = True
        return self._rich_err

    def display(self) -> Display:
        """Progress bars (or plain lines) on stderr, on the runtime's clock."""
        return self.display_on(self.runtime.clock)

    def display_on(self, clock: Callable[[], float]) -> Display:
        from steadypost.cli.progress import Display

        return Display(self.rich_err(), clock=clock, quiet=self.quiet)

    def print_posts(self, posts: Iterable[Post], *, as_json: bool) -> None:
        from steadypost.cli.output import print_posts

        print_posts(self.out, posts, as_json=as_json, now=self.now())

    def note(self, text: str) -> None:
        self.err.line(text)

    def warn(self, text: str) -> None:
        self.err.line(self.err.style("warning:", "yellow") + " " + text)
