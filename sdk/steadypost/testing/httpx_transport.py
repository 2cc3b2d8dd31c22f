"""An httpx transport (sync and async) that talks to a simulator with no sockets.

Request bodies are consumed as the client produces them, so a streamed file
is never held in memory twice and ``ResetMidChunk`` stops reading exactly
where it should. Broken connections become the exceptions httpx itself would
raise over a network:

=====================  ==========================================
the simulator says     your client sees
=====================  ==========================================
refuse (``Outage``)    ``httpx.ConnectError`` (nothing was sent)
reset                  ``httpx.ReadError``
no answer              ``httpx.ReadTimeout`` (at once, no waiting)
=====================  ==========================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from steadypost.testing.messages import Answer, Drop, RequestHead, http_date, reason_phrase

if TYPE_CHECKING:
    from steadypost.testing.exchange import Exchange
    from steadypost.testing.simulator import PlatformSimulator


def _head(request: httpx.Request) -> RequestHead:
    url = request.url
    return RequestHead.build(
        method=request.method,
        target=url.raw_path.decode("ascii"),
        origin=f"{url.scheme}://{url.netloc.decode('ascii')}",
        headers=request.headers.multi_items(),
    )


def _drop_error(drop: Drop, request: httpx.Request) -> httpx.TransportError:
    if drop.kind == "refuse":
        return httpx.ConnectError("[Errno 111] Connection refused", request=request)
    if drop.kind == "timeout":
        return httpx.ReadTimeout("The read operation timed out", request=request)
    return httpx.ReadError("[Errno 104] Connection reset by peer", request=request)


def _response(request: httpx.Request, answer: Answer, *, now: float) -> httpx.Response:
    if isinstance(answer, Drop):
        raise _drop_error(answer, request)
    return httpx.Response(
        answer.status,
        headers=[*answer.headers, ("Date", http_date(now))],
        content=b"" if request.method == "HEAD" else answer.body,
        request=request,
        extensions={
            "http_version": b"HTTP/1.1",
            "reason_phrase": reason_phrase(answer.status).encode("ascii"),
        },
    )


class SimTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Serves ``httpx.Client`` and ``httpx.AsyncClient`` from a :class:`PlatformSimulator`."""

    def __init__(self, sim: PlatformSimulator) -> None:
        self.sim = sim

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        exchange = self.sim.exchange(_head(request))
        if not exchange.refused:
            stream = request.stream
            if not isinstance(stream, httpx.SyncByteStream):
                raise RuntimeError("a sync client sent an async request body")
            try:
                for chunk in stream:
                    if not exchange.feed(chunk):
                        break
            except BaseException:
                _abandon(exchange)
                raise
        return _response(request, exchange.finish(), now=self.sim.clock.now())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        exchange = self.sim.exchange(_head(request))
        if not exchange.refused:
            stream = request.stream
            if not isinstance(stream, httpx.AsyncByteStream):
                raise RuntimeError("an async client sent a sync request body")
            try:
                async for chunk in stream:
                    if not exchange.feed(chunk):
                        break
            except BaseException:
                _abandon(exchange)
                raise
        return _response(request, exchange.finish(), now=self.sim.clock.now())


def _abandon(exchange: Exchange) -> None:
    """The client's own body iterator failed: the server saw the connection drop."""
    exchange.finish(body_complete=False)
