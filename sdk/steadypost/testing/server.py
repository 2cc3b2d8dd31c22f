"""``SimulatorServer``: the simulator on a real socket at 127.0.0.1.

Use it when the code under test opens its own connections (tuspy, curl, a
subprocess) or when you want real TCP failures::

    with SimulatorServer(sim) as server:
        httpx.post(f"{server.url}/files", headers={...})

Faults act on the wire: a refusing :class:`~steadypost.testing.Outage` closes
the listening port for its window (connections are refused, idle keep-alive
connections are hung up), and reopens it on the same port when the fake
clock leaves the window. Outages limited by ``path`` or ``times`` cannot be
done with a closed port, so they reset each matching connection instead.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable
from types import TracebackType

from .faults import Outage
from .server_handler import SimHTTPServer
from .simulator import PlatformSimulator

#: Only loopback: the simulator is for tests and never listens on the network.
LOOPBACK = "127.0.0.1"
_POLL_S = 0.05


def _listen(port: int) -> socket.socket:
    sock = socket.create_server((LOOPBACK, port))
    sock.setblocking(False)
    return sock


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes any select() and stops listening now
    sock.close()


class SimulatorServer:
    """Runs ``sim`` on ``http://127.0.0.1:<port>`` (``port=0``: a free port).

    A context manager; ``url`` is the base URL (tus endpoint at
    ``url + "/files"``). Each connection gets its own thread; keep-alive is on.
    ``ssl_context`` (a server-side :class:`ssl.SSLContext`, e.g. from a
    ``trustme`` CA) serves ``https://127.0.0.1:<port>`` instead, for clients
    that only speak https (tweepy).
    """

    def __init__(
        self, sim: PlatformSimulator, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.sim = sim
        self._ssl = ssl_context
        self._requested_port = port
        self._lock = threading.RLock()
        self._httpd: SimHTTPServer | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` with TLS), without a trailing slash."""
        if not self.port:
            raise RuntimeError("the server is not running; use start() or a with block")
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    @property
    def listening(self) -> bool:
        """False while a refusing outage keeps the port closed."""
        with self._lock:
            return self._listener is not None

    def start(self) -> SimulatorServer:
        """Bind and serve in a background thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        httpd = SimHTTPServer((LOOPBACK, self._requested_port), self.sim)
        httpd.socket.setblocking(False)
        if self._ssl is not None:
            httpd.scheme = "https"
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._listener = httpd.socket
        self._unsubscribe = [
            self.sim.clock.subscribe(lambda _now: self._reconcile()),
            self.sim.faults.subscribe(self._reconcile),
        ]
        self._reconcile()
        self._thread = threading.Thread(target=self._serve, name="steadypost-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, hang up every connection, and wait for the threads."""
        httpd = self._httpd
        if httpd is None:
            return
        httpd.stopping.set()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        with self._lock:
            if self._listener is not None:
                _close(self._listener)
                self._listener = None
        if self._thread is not None:
            self._thread.join()
        httpd.hang_up(idle_only=False)
        httpd.server_close()
        self._httpd = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the port, opened and closed with the clock ----------------------------------

    def _refusing(self) -> bool:
        now = self.sim.clock.now()
        return any(
            rule.mode == "refuse" and rule.path is None and rule.times is None
            for rule in self.sim.faults.active(Outage, now)
        )

    def _reconcile(self) -> None:
        """Close or reopen the port to match the refusing outages at the current time."""
        httpd = self._httpd
        if httpd is None or httpd.stopping.is_set():
            return
        with self._lock:
            refusing = self._refusing()
            if refusing and self._listener is not None:
                _close(self._listener)
                self._listener = None
                httpd.hang_up(idle_only=True)
            elif not refusing and self._listener is None:
                try:
                    self._listener = _listen(self.port)
                except OSError:
                    return  # the port is busy for a moment: the serve loop retries
                httpd.socket = self._listener

    def _serve(self) -> None:
        httpd = self._httpd
        assert httpd is not None
        while not httpd.stopping.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                httpd.stopping.wait(_POLL_S)
                self._reconcile()
                continue
            try:
                ready, _, _ = select.select([listener], [], [], _POLL_S)
            except (OSError, ValueError):
                continue
            if not ready:
                self._reconcile()  # a clock without listeners moved: catch up
                continue
            with self._lock:
                if self._listener is not listener:
                    continue
                try:
                    conn, address = listener.accept()
                except OSError:
                    continue
            conn.setblocking(True)
            if self._ssl is not None:
                try:
                    conn.settimeout(5.0)
                    conn = self._ssl.wrap_socket(conn, server_side=True)
                    conn.settimeout(None)
                except (OSError, ssl.SSLError):
                    conn.close()
                    continue
            httpd.process_request(conn, address)
