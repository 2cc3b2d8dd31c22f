"""The post lifecycle's decisions as a table: facts in, a Transition out, no journal, no file.

Each row is one situation of DESIGN.md's state machine; ``lifecycle.outcome`` decides it
and the recorders only apply the result. (In the manner of h11's state-machine tests.)
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from steadypost.errors import (
    AuthorizationError,
    ConfigurationError,
    ConnectFailedError,
    ConnectionLostError,
    FileProblemError,
    HostUnavailableError,
    InternalError,
    Outcome,
    ProtocolError,
    RetriesExhaustedError,
    StatusError,
    SteadypostError,
    UploadCancelledError,
    UploadStalledError,
    WireBoundError,
)
from steadypost.lifecycle import outcome
from steadypost.lifecycle.options import PostOptions
from steadypost.models import FileIdentity, Post, PostState
from steadypost.platforms.base import CheckResult, CheckStatus
from steadypost.policy import RetryPolicy

NOW = 1_800_000_000.0
S = PostState
OPTIONS = PostOptions()


def post(**kw: Any) -> Post:
    base: dict[str, Any] = {
        "post_id": "01J", "platform": "tus", "endpoint": "https://e/files/", "path": "/v.mp4",
        "identity": FileIdentity(1000, 1), "state": S.UPLOADING, "attempts": 0,
        "updated_at": NOW - 60,
    }  # fmt: skip
    return Post(**{**base, **kw})


def ctx(**options: Any) -> outcome.Context:
    return outcome.Context(now=NOW, rng=random.Random(7), policy=RetryPolicy(),
                           options=PostOptions(**options))  # fmt: skip


def exhausted(cause: SteadypostError) -> RetriesExhaustedError:
    error = RetriesExhaustedError("gave up", outcome=cause.outcome, attempts=12)
    error.__cause__ = cause
    return error


# (what happened, last byte sent?, attempts so far, the state, when: now/later/window/None)
BUSY = StatusError("x", status=503, retry_after=90, outcome=Outcome.NOT_DELIVERED)
UPLOAD_FAILED = [
    ("refused connection", ConnectFailedError("x"), False, 0, S.WAITING, "later"),
    ("503 with Retry-After", BUSY, False, 0, S.WAITING, "later"),
    ("retries ran out, nothing lost", exhausted(ConnectFailedError("x")), False, 3, S.WAITING,
     "later"),
    ("reset after the last byte", ConnectionLostError("x"), True, 0, S.UNCONFIRMED, "window"),
    ("timeout mid-file", ConnectionLostError("x"), False, 0, S.WAITING, "later"),
    ("401: token revoked", AuthorizationError("x", platform="tus", code="401"), False, 0,
     S.FAILED, None),
    ("403 on PATCH", StatusError("x", status=403), False, 0, S.FAILED, None),
    ("file changed", FileProblemError("x"), False, 0, S.FAILED, None),
    ("file changed after the last byte", FileProblemError("x"), True, 0, S.FAILED, None),
    ("wrong endpoint", ConfigurationError("x"), False, 0, S.FAILED, None),
    ("too many bytes sent", WireBoundError("x"), False, 0, S.FAILED, None),
    ("nonsense, first time", ProtocolError("x"), False, 0, S.WAITING, "later"),
    ("nonsense, fifth time", ProtocolError("x"), False, 4, S.FAILED, None),
    ("offset stuck, first time", UploadStalledError("x"), False, 0, S.WAITING, "later"),
    ("a bug, first time", InternalError("x"), False, 0, S.WAITING, "later"),
    ("a bug, fifth time", InternalError("x"), False, 4, S.FAILED, None),
    ("cancelled after the last byte", UploadCancelledError("x"), True, 0, S.WAITING, "now"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("exc", "last_byte", "attempts", "to", "when"),
    [row[1:] for row in UPLOAD_FAILED],
    ids=[row[0] for row in UPLOAD_FAILED],
)
def test_an_upload_that_failed(
    exc: SteadypostError, last_byte: bool, attempts: int, to: PostState, when: str | None
) -> None:
    t = outcome.upload_failed(post(attempts=attempts), exc, last_byte_sent=last_byte, ctx=ctx())
    assert t.to is to
    assert t.fields["attempts"] == attempts + 1
    assert t.fields["last_error"] == str(exc)
    assert t.event["type"] == type(exc).__name__
    at = t.fields["next_attempt_at"]
    if when is None:
        assert at is None
    elif when == "now":
        assert at == NOW
    elif when == "window":
        assert NOW + 15 * 60 <= at <= NOW + 30 * 60
        assert t.fields["extra"]["unconfirmed_since"] == NOW
        assert t.fields["extra"]["checks"] == 0
    else:
        assert at >= NOW + RetryPolicy().floor_s  # never due again at once


def test_a_retry_after_sets_when_the_post_goes_again() -> None:
    t = outcome.upload_failed(post(), BUSY, last_byte_sent=False, ctx=ctx())
    assert t.fields["next_attempt_at"] >= NOW + 90


def test_a_wrong_endpoint_is_marked_so_the_cli_exits_2() -> None:
    t = outcome.upload_failed(post(), ConfigurationError("x"), last_byte_sent=False, ctx=ctx())
    assert t.fields["extra"]["failed_because"] == "configuration"


def test_stopped_on_purpose_spends_no_attempt() -> None:
    t = outcome.upload_failed(post(attempts=2), UploadCancelledError("x"), last_byte_sent=False,
                              ctx=ctx())  # fmt: skip
    assert t == outcome.Transition(S.WAITING, {"next_attempt_at": NOW},
                                   {"note": "stopped; resumable from the server's offset"})


def test_every_byte_up_is_confirmed_with_its_digest() -> None:
    t = outcome.uploaded(post(), sha256="ab" * 32)
    assert t.to is S.CONFIRMED
    assert t.fields == {"offset": 1000, "sha256": "ab" * 32, "last_error": None,
                        "next_attempt_at": None}  # fmt: skip


def test_a_host_that_refuses_defers_without_an_attempt() -> None:
    refusal = HostUnavailableError("h is recovering", host="h", retry_after=42, reason="open")
    t = outcome.deferred(refusal, ctx=ctx())
    assert t.to is S.WAITING
    assert t.fields == {"next_attempt_at": NOW + 42, "last_error": "h is recovering"}
    assert "attempts" not in t.fields


def test_an_interrupted_run_is_due_again_at_once() -> None:
    assert outcome.interrupted("Ctrl-C", ctx=ctx()) == outcome.Transition(
        S.WAITING, {"next_attempt_at": NOW, "last_error": "Ctrl-C"}
    )


@pytest.mark.parametrize("restart", [False, True])
def test_a_changed_file_fails_or_starts_over(restart: bool) -> None:
    kw = {"size": 2000, "mtime_ns": 9, "dev": 1, "inode": 2, "ctime_ns": 3}
    if not restart:
        with pytest.raises(FileProblemError, match="never resumed into the old upload"):
            outcome.file_changed(post(), "size 1000 -> 2000", options=OPTIONS, **kw)
        return
    t = outcome.file_changed(post(), "size 1000 -> 2000",
                             options=PostOptions(restart_if_changed=True), **kw)  # fmt: skip
    assert t.to is S.UPLOADING
    assert t.fields["offset"] == 0
    assert t.fields["upload_url"] is None
    assert t.fields["size"] == 2000


# --- publish ---------------------------------------------------------------------------

PUBLISHED = [
    ("processed", CheckResult(CheckStatus.PROCESSED), S.CONFIRMED),
    ("processing", CheckResult(CheckStatus.PROCESSING), S.UNCONFIRMED),
    ("refused", CheckResult(CheckStatus.FAILED, "codec"), S.FAILED),
    ("failed, retryable", CheckResult(CheckStatus.FAILED, "busy", retryable=True), S.UNCONFIRMED),
    ("odd answer", CheckResult(CheckStatus.NOT_PROCESSED), S.UNCONFIRMED),
]


@pytest.mark.parametrize(("result", "to"), [r[1:] for r in PUBLISHED],
                         ids=[r[0] for r in PUBLISHED])  # fmt: skip
def test_a_publish_answer(result: CheckResult, to: PostState) -> None:
    assert outcome.published(post(), result, ctx=ctx()).to is to


PUBLISH_FAILED = [
    ("5xx: may be live", StatusError("x", status=500, outcome=Outcome.AMBIGUOUS), S.UNCONFIRMED),
    ("lost answer", ConnectionLostError("x"), S.UNCONFIRMED),
    ("never sent", ConnectFailedError("x"), S.WAITING),
    ("refused", StatusError("x", status=400), S.FAILED),
]


@pytest.mark.parametrize(("exc", "to"), [r[1:] for r in PUBLISH_FAILED],
                         ids=[r[0] for r in PUBLISH_FAILED])  # fmt: skip
def test_a_publish_that_failed_is_never_resent_blindly(exc: SteadypostError, to: PostState) -> None:
    t = outcome.publish_failed(post(), exc, ctx=ctx())
    assert t.to is to
    assert t.fields["attempts"] == 1
    if to is S.UNCONFIRMED:
        assert NOW + 15 * 60 <= t.fields["next_attempt_at"] <= NOW + 30 * 60


# --- verification ----------------------------------------------------------------------

CHECKED = [
    ("processed", CheckStatus.PROCESSED, False, 0.0, S.CONFIRMED),
    ("processing", CheckStatus.PROCESSING, False, 0.0, S.UNCONFIRMED),
    ("processing for 72 h", CheckStatus.PROCESSING, False, 72 * 3600.0, S.FAILED),
    ("not processed", CheckStatus.NOT_PROCESSED, False, 0.0, S.QUEUED),
    ("failed, retryable", CheckStatus.FAILED, True, 0.0, S.QUEUED),
    ("failed for good", CheckStatus.FAILED, False, 0.0, S.FAILED),
]


@pytest.mark.parametrize(("status", "retryable", "age", "to"), [r[1:] for r in CHECKED],
                         ids=[r[0] for r in CHECKED])  # fmt: skip
def test_a_check_of_an_unconfirmed_post(
    status: CheckStatus, retryable: bool, age: float, to: PostState
) -> None:
    waiting = post(state=S.UNCONFIRMED, extra={"unconfirmed_since": NOW - age, "checks": 2})
    t = outcome.checked(waiting, CheckResult(status, "why", retryable=retryable), ctx=ctx())
    assert t.to is to
    assert t.fields["extra"]["checks"] == 3
    assert t.evidence is not None
    assert t.evidence["check"] == 3
    assert t.evidence["status"] == status.value
    if to is S.UNCONFIRMED:  # checked again after 30 min x 2**(checks-1), +-10%
        assert NOW + 0.9 * 7200 <= t.fields["next_attempt_at"] <= NOW + 1.1 * 7200


def test_a_check_that_could_not_be_made_changes_only_the_next_time() -> None:
    t = outcome.check_failed(post(state=S.UNCONFIRMED), ConnectFailedError("down"), ctx=ctx())
    assert t.to is S.UNCONFIRMED
    assert set(t.fields) == {"next_attempt_at"}
    assert t.evidence == {"check": 1, "error": "down"}


def test_the_outcome_module_touches_no_journal_and_no_sqlite() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(outcome))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
             for alias in node.names} | {node.module or "" for node in ast.walk(tree)
                                         if isinstance(node, ast.ImportFrom)}  # fmt: skip
    assert not {n for n in names if "sqlite" in n or "journal" in n}
