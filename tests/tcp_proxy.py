"""A TCP proxy on 127.0.0.1 that counts the bytes clients send, with the time they arrive.

For tests that must show a client sent *nothing* in some window (a worker resumed after
a freeze): ``CountingProxy(port)`` forwards every connection to ``127.0.0.1:port``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class CountingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self.sent: list[tuple[float, int]] = []
        """``(time.monotonic(), bytes)`` for every read from a client."""
        self._sockets: list[socket.socket] = []
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bytes_since(self, moment: float) -> int:
        with self._lock:
            return sum(n for at, n in self.sent if at >= moment)

    def total(self) -> int:
        return self.bytes_since(0.0)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        """Forward; a client's bytes are counted (and read) even once the server hung up."""
        open_sink = True
        try:
            while data := source.recv(65536):
                if count:
                    with self._lock:
                        self.sent.append((time.monotonic(), len(data)))
                if open_sink:
                    try:
                        sink.sendall(data)
                    except OSError:
                        open_sink = False
                        if not count:
                            return
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stopping = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
