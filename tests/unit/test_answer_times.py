"""An answer's time comes from the driver's stamp (``Response.received_at``), and a
``Retry-After`` date is read against the server's own ``Date``: a client whose clock is
off waits as long as the server asked."""

from __future__ import annotations

import email.utils

import httpx

from steadypost.flow import Request, Response
from steadypost.platforms.http import status_error
from steadypost.testing import FakeClock, pump

T = 1_800_000_000.0


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def test_a_retry_after_date_is_read_on_the_servers_clock() -> None:
    server_now = T + 3600  # the client's clock is an hour behind the server's
    answer = Response(503, {"date": http_date(server_now),
                            "retry-after": http_date(server_now + 120)}, received_at=T)  # fmt: skip
    error = status_error(Request("PATCH", "https://h/u"), answer, what="sending")
    assert error.retry_after == 120


def test_without_a_date_it_is_read_on_the_drivers_stamp() -> None:
    answer = Response(503, {"retry-after": http_date(T + 30)}, received_at=T)
    assert status_error(Request("GET", "https://h/"), answer, what="x").retry_after == 30


def test_with_no_time_at_all_a_date_means_now_and_the_backoff_still_applies() -> None:
    answer = Response(503, {"retry-after": http_date(T + 30)})
    assert status_error(Request("GET", "https://h/"), answer, what="x").retry_after == 0


def test_the_drivers_stamp_every_answer() -> None:
    def flow():  # type: ignore[no-untyped-def]
        response = yield Request("GET", "https://h/")
        return response

    clock = FakeClock(start=T)
    run = pump(flow(), lambda request, body: Response(200), clock=clock)
    assert run.result is not None
    assert run.result.received_at == T
    # And the real driver: the same, on its clock.
    from steadypost import Uploader

    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with Uploader(client=httpx.Client(transport=transport), clock=lambda: T + 5) as up:
        answer = up._drive(flow())
    assert answer.received_at == T + 5
