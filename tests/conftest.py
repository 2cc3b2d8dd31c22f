"""Shared fixtures.

* ``steadypost_home`` (autouse): every test gets its own empty data/config location.
* ``clock`` (a :class:`~steadypost.testing.FakeClock` at ``T0``) and ``journal`` (a fresh
  journal in the test's tmp dir, on that clock).
* ``tus_server`` / ``tus_server_session`` / ``make_tus_server``: the reference tus server
  (``@tus/server`` + ``@tus/file-store``) on 127.0.0.1, see ``tests/tusd.py``.
* ``postgres_server`` (one per session), ``pg_url`` (a fresh database per test) and
  ``journal_target`` (each journal backend in turn: an SQLite file, then a PostgreSQL
  database): a real PostgreSQL on 127.0.0.1, see ``tests/pgserver.py``.

Tests that use a tus server fixture are marked ``integration`` automatically, and tests that
use PostgreSQL ``postgres``. The server fixtures never skip: without ``tests/node_modules``
(or PostgreSQL's binaries) they fail and say what to install. With
``STEADYPOST_REQUIRE_INTEGRATION=1`` (set by ``.ci/run``), a skipped ``integration`` or
``postgres`` test counts as a failure too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # also importable if tests/ ever becomes a package
    sys.path.insert(0, _TESTS_DIR)

from pgserver import PostgresServer, PostgresServerError  # noqa: E402
from steadypost import Journal  # noqa: E402
from steadypost.testing import FakeClock  # noqa: E402
from tusd import TusServer, TusServerError  # noqa: E402

TUS_SERVER_FIXTURES = frozenset({"tus_server", "tus_server_session", "make_tus_server"})
POSTGRES_FIXTURES = frozenset({"postgres_server", "pg_url"})
BACKENDS = ("sqlite", "postgresql")
REQUIRE_INTEGRATION_ENV = "STEADYPOST_REQUIRE_INTEGRATION"


# --------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True)
def steadypost_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point steadypost's data dir (and platformdirs' XDG dirs) at fresh tmp dirs, and the
    ``keyring`` library at a file keyring among them.

    Returns the ``STEADYPOST_HOME`` path. It does not exist yet (as on a first run): the
    SDK creates it. The XDG directories exist and are empty.
    """
    base = tmp_path_factory.mktemp("env")
    home = base / "steadypost-home"
    monkeypatch.setenv("STEADYPOST_HOME", str(home))
    for var, name in (
        ("XDG_DATA_HOME", "xdg-data"),
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_STATE_HOME", "xdg-state"),
        ("XDG_CACHE_HOME", "xdg-cache"),
    ):
        path = base / name
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    # Never the real OS keyring: keyrings.alt's plain file, under this test's XDG data dir.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    return home


# --------------------------------------------------------------- shared test values

#: When every fake clock starts (2027-01-15): far from any real "now", so a test that
#: reads the wall clock by mistake shows it at once.
T0 = 1_800_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at :data:`T0`: sleeping on it advances it, nothing waits for real."""
    return FakeClock(start=T0)


@pytest.fixture
def journal(tmp_path: Path, clock: FakeClock) -> Iterator[Journal]:
    """A fresh journal in the test's tmp dir, on the fake ``clock``."""
    with Journal(tmp_path / "j.sqlite3", clock=clock.now) as j:
        yield j


# --------------------------------------------------------------------- tus servers


def _start(server: TusServer) -> TusServer:
    try:
        return server.start()
    except TusServerError as exc:
        message = str(exc)
    # Fail, never skip: CI must not pass with the integration tests silently missing.
    pytest.fail(f"cannot start the reference tus server: {message}", pytrace=False)


class TusServerFactory:
    """``make_tus_server(**options) -> TusServer``: started now, stopped at teardown.

    Options are :class:`tusd.TusServer`'s keyword arguments: ``port``, ``expiration_ms``,
    ``cleanup_interval_ms``, ``max_size``, ``relative_location``, ``log_requests``, ``tls_cert``
    and ``tls_key`` (HTTPS);
    ``storage_dir`` defaults to a fresh tmp dir.
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.servers: list[TusServer] = []

    def __call__(self, storage_dir: Path | str | None = None, **options: Any) -> TusServer:
        if storage_dir is None:
            storage_dir = self._tmp.mktemp("tus") / "uploads"
        server = TusServer(storage_dir, **options)
        self.servers.append(server)
        return _start(server)

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def make_tus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TusServerFactory]:
    """Factory fixture: ``make_tus_server(**options)`` starts another reference tus server."""
    factory = TusServerFactory(tmp_path_factory)
    yield factory
    factory.stop_all()


@pytest.fixture
def tus_server(make_tus_server: TusServerFactory) -> TusServer:
    """A fresh reference tus server on a free 127.0.0.1 port, with empty tmp storage."""
    return make_tus_server()


@pytest.fixture(scope="session")
def tus_server_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Generator[TusServer, None, None]:
    """One server shared by the whole session: for tests that do not restart it or count
    its uploads (other tests' uploads are in its storage too)."""
    server = TusServer(tmp_path_factory.mktemp("tus-session") / "uploads")
    _start(server)
    yield server
    server.stop()


# ------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server() -> Generator[PostgresServer, None, None]:
    """One real PostgreSQL for the session (started on first use, on 127.0.0.1)."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresServerError as exc:
        pytest.fail(f"cannot start PostgreSQL for the tests: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database (dropped after the test)."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What ``Journal(...)`` is given: an SQLite file, then (the second run) a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("pg_url"))


# ----------------------------------------------------------------------------- hooks


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated so the marker is known whatever the rootdir.
    config.addinivalue_line(
        "markers", "integration: runs against the real @tus/server started on 127.0.0.1"
    )
    config.addinivalue_line("markers", "postgres: runs against a real PostgreSQL on 127.0.0.1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if TUS_SERVER_FIXTURES.intersection(names):
            item.add_marker(pytest.mark.integration)
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("journal_target") if callspec is not None else None
        if POSTGRES_FIXTURES.intersection(names) or backend == "postgresql":
            item.add_marker(pytest.mark.postgres)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        report.skipped
        and os.environ.get(REQUIRE_INTEGRATION_ENV) == "1"
        and (item.get_closest_marker("integration") is not None
             or item.get_closest_marker("postgres") is not None)
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"integration test skipped while {REQUIRE_INTEGRATION_ENV}=1: {report.longrepr}"
        )
    if report.failed and item.get_closest_marker("postgres") is not None:
        server = getattr(item, "funcargs", {}).get("postgres_server")
        log = server.log_text() if isinstance(server, PostgresServer) else ""
        if log:
            report.sections.append(("PostgreSQL log", log[-20000:]))
    if report.failed:
        servers: dict[int, TusServer] = {}
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        for name in TUS_SERVER_FIXTURES:
            value = funcargs.get(name)
            candidates = value.servers if isinstance(value, TusServerFactory) else [value]
            for server in candidates:
                if isinstance(server, TusServer):
                    servers[id(server)] = server
        for server in servers.values():
            log = server.log_text()
            if log:
                report.sections.append((f"tus server log ({server.log_path})", log[-20000:]))
    return report
