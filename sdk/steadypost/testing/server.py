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
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, cast

from steadypost.testing.faults import Outage
from steadypost.testing.messages import Drop, Reply, RequestHead, error_reply, reason_phrase
from steadypost.testing.simulator import PlatformSimulator

if TYPE_CHECKING:
    from steadypost.testing.simulator import PlatformSimulator

#: Bytes read from the socket per step while streaming a request body.
READ_BLOCK = 64 * 1024
#: A connection idle (or stalled mid-body) this long is closed by the server.
SOCKET_TIMEOUT_S = 5.0
_POLL_S = 0.05


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def readline(self, size: int, /) -> bytes: ...


class ClientGoneError(Exception):
    """The client stopped sending before the body was complete."""


def read_body(rfile: _Readable, headers: Message, *, block: int = READ_BLOCK) -> Iterator[bytes]:
    """Yield a request body in blocks of at most ``block`` bytes, as it arrives."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        yield from _chunked(rfile, block)
        return
    raw = (headers.get("Content-Length") or "0").strip()
    if not raw.isdigit():
        raise ClientGoneError(f"bad Content-Length {raw!r}")
    yield from _exactly(rfile, int(raw), block)


def _exactly(rfile: _Readable, size: int, block: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        data = rfile.read(min(block, remaining))
        if not data:
            raise ClientGoneError(f"{remaining} body bytes never arrived")
        remaining -= len(data)
        yield data


def _chunked(rfile: _Readable, block: int) -> Iterator[bytes]:
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise ClientGoneError("malformed chunk size") from exc
        if size == 0:
            while rfile.readline(1024).strip():  # trailers, up to the blank line
                pass
            return
        yield from _exactly(rfile, size, block)
        rfile.readline(1024)  # the CRLF after each chunk


class SimHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its simulator and its open connections."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], sim: PlatformSimulator) -> None:
        super().__init__(address, SimRequestHandler)
        self.sim = sim
        self.scheme = "http"
        """``https`` when :class:`~steadypost.testing.SimulatorServer` serves TLS."""
        self.stopping = threading.Event()
        self._conns_lock = threading.Lock()
        self._conns: dict[socket.socket, bool] = {}  # socket -> idle?

    def track(self, sock: socket.socket, *, idle: bool) -> None:
        """Remember a connection and whether it waits for its next request."""
        with self._conns_lock:
            self._conns[sock] = idle

    def forget(self, sock: socket.socket) -> None:
        """The connection is closed."""
        with self._conns_lock:
            self._conns.pop(sock, None)

    def hang_up(self, *, idle_only: bool) -> None:
        """Shut down idle connections (or all), so clients must connect again."""
        with self._conns_lock:
            victims = [s for s, idle in self._conns.items() if idle or not idle_only]
        for sock in victims:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that vanished; print anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class SimRequestHandler(BaseHTTPRequestHandler):
    """Serves every method by handing the request to the simulator."""

    protocol_version = "HTTP/1.1"
    server_version = "steadypost-simulator"
    timeout = SOCKET_TIMEOUT_S

    @property
    def httpd(self) -> SimHTTPServer:
        """The server, with its real type."""
        return cast(SimHTTPServer, self.server)

    def setup(self) -> None:
        super().setup()
        self.httpd.track(self.connection, idle=True)
        if self.httpd.stopping.is_set():
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.httpd.forget(self.connection)

    def handle_one_request(self) -> None:
        self.httpd.track(self.connection, idle=True)
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: ``sim.requests`` is the log."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """``Date`` comes from the simulator's fake clock."""
        return super().date_time_string(self.httpd.sim.clock.now() if timestamp is None
                                        else timestamp)

    def _serve(self) -> None:
        self.httpd.track(self.connection, idle=False)
        host = self.headers.get("Host") or "{}:{}".format(*self.connection.getsockname()[:2])
        head = RequestHead.build(method=self.command, target=self.path,
                                 origin=f"{self.httpd.scheme}://{host}",
                                 headers=self.headers.items())
        try:
            exchange = self.httpd.sim.exchange(head)
            complete = True
            if not exchange.refused:
                try:
                    for block in read_body(self.rfile, self.headers):
                        if not exchange.feed(block):
                            break
                except (OSError, ClientGoneError):
                    complete = False
            answer = exchange.finish(body_complete=complete)
        except Exception:
            traceback.print_exc()
            answer = error_reply(500, "simulator bug (traceback on stderr)")
        if isinstance(answer, Drop):
            self._act_out(answer)
        else:
            self._reply(answer)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve  # noqa: N815

    def _reply(self, reply: Reply) -> None:
        body = b"" if self.command == "HEAD" else reply.body
        try:
            self.send_response(reply.status, reason_phrase(reply.status))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _act_out(self, drop: Drop) -> None:
        if drop.kind == "timeout":
            self._stay_silent(drop.hold_s)
            self.close_connection = True  # then an ordinary close (FIN), still no answer
        else:
            self._reset()

    def _stay_silent(self, hold_s: float) -> None:
        """Say nothing until the client hangs up, ``hold_s`` passes, or the server stops."""
        deadline = time.monotonic() + hold_s
        while not self.httpd.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                ready, _, _ = select.select([self.connection], [], [], min(_POLL_S, left))
                if ready and not self.connection.recv(1, socket.MSG_PEEK):
                    return
            except OSError:
                return

    def _reset(self) -> None:
        """Close abruptly: a TCP RST, no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.connection.close()
        self.rfile.close()


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
