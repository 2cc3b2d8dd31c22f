"""Secrets never reach the evidence log; post ids sort by time."""

from __future__ import annotations

import pytest

from steadypost.journal import new_post_id, redact_url
from steadypost.journal.redact import redact_text, sanitize
from steadypost.models import PostState

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.example/files/1", "https://e.example/files/1"),
        ("https://e.example/f?access_token=abc&x=1", "https://e.example/f?access_token=REDACTED&x=1"),
        ("https://e.example/f?token=a&sig=b&key=c&part=2",
         "https://e.example/f?token=REDACTED&sig=REDACTED&key=REDACTED&part=2"),
        ("https://s3.example/v.mp4?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Expires=60",
         "https://s3.example/v.mp4?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"
         "&X-Amz-Expires=60"),
        ("https://e.example/cb#access_token=zz&state=1",
         "https://e.example/cb#access_token=REDACTED&state=1"),
        ("https://user:hunter2@e.example/x", "https://user:REDACTED@e.example/x"),
        ("https://user@e.example/x?upload_token=q", "https://user@e.example/x?upload_token=REDACTED"),
        ("https://e.example/x?signature=", "https://e.example/x?signature="),
        ("https://[::1/x?token=t", "https://[::1/x?REDACTED"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_finds_urls_and_auth_headers() -> None:
    text = "PATCH https://e.example/f?token=abc failed; sent Authorization: Bearer eyJhbGciOi.x.y"
    assert redact_text(text) == (
        "PATCH https://e.example/f?token=REDACTED failed; sent Authorization: Bearer REDACTED"
    )


def test_sanitize_drops_secret_keys_everywhere() -> None:
    data = {
        "Authorization": "Bearer x",
        "headers": {"Proxy-Authorization": "p", "X-Api-Key": "k", "Set-Cookie": "s", "Ok": "1"},
        "nested": [{"refresh_token": "r", "client_secret": "c", "password": "p", "n": 1}],
        "pairs": [["cookie", "c"], ["accept", "x"]],
        "state": PostState.QUEUED,
        PostState.WAITING: "enum key",
        "blob": b"\x00" * 10,
        "inf": float("inf"),
        "tags": {"b", "a"},
    }
    assert sanitize(data) == {
        "headers": {"Ok": "1"},
        "nested": [{"n": 1}],
        "pairs": [["accept", "x"]],
        "state": "queued",
        "waiting": "enum key",
        "blob": "<10 bytes>",
        "inf": "inf",
        "tags": ["a", "b"],
    }


def test_sanitize_stops_at_absurd_depth() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(100):
        node["d"] = {}
        node = node["d"]  # type: ignore[assignment]
    assert "..." in str(sanitize(deep))


def crockford(value: int, width: int) -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(width)))


def test_post_ids_are_ulids_sorted_by_time() -> None:
    t = [4_000_000_000.0]  # later than any clock other tests use: ids are monotonic per process
    ids = []
    for _ in range(50):
        ids.append(new_post_id(clock=lambda: t[0]))
        ids.append(new_post_id(clock=lambda: t[0]))  # same millisecond: still increasing
        t[0] += 0.0005
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 and set(i) <= CROCKFORD for i in ids)
    assert ids[0][:10] == crockford(4_000_000_000_000, 10)  # 48-bit millisecond prefix
    assert ids[-1][:10] == crockford(4_000_000_000_024, 10)


def test_post_ids_stay_increasing_if_the_clock_steps_back() -> None:
    first = new_post_id(clock=lambda: 2_000_000_000.0)
    second = new_post_id(clock=lambda: 1_000_000_000.0)
    assert second > first
