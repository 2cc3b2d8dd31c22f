"""The publish intent in a post's ``extra``: kept while its outcome is unknown, dropped once known.

A run journals ``publish_started_at`` before its publish request. A later run that finds
it there knows a publish went out with no journaled answer, and verifies instead of
sending it again (``outcome.publish_unknown``); every decision that learns the outcome
drops it, so a post the platform never got is posted again after its check.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import pytest
from test_outcome import ctx, post

from steadypost.errors import ConnectFailedError, ConnectionLostError, Outcome, StatusError
from steadypost.lifecycle import outcome
from steadypost.models import PostState
from steadypost.platforms.base import CheckResult, CheckStatus

S = PostState
SENT = MappingProxyType({outcome.PUBLISH_SENT: 1.0, "publish_id": "p1"})


def test_a_publish_sent_by_an_earlier_run_is_verified_not_resent() -> None:
    t = outcome.publish_unknown(post(extra=SENT), ctx=ctx())
    assert t.to is S.UNCONFIRMED
    assert t.event["publish"] == "unknown"
    assert outcome.PUBLISH_SENT not in t.fields["extra"]  # the check settles it
    assert t.fields["extra"]["publish_id"] == "p1"
    assert t.fields["next_attempt_at"] > ctx().now


@pytest.mark.parametrize(
    ("decide", "to"),
    [
        (lambda p: outcome.published(p, CheckResult(CheckStatus.PROCESSED), ctx=ctx()),
         S.CONFIRMED),
        (lambda p: outcome.published(p, CheckResult(CheckStatus.PROCESSING), ctx=ctx()),
         S.UNCONFIRMED),
        (lambda p: outcome.published(p, CheckResult(CheckStatus.FAILED, reason="codec"),
                                     ctx=ctx()), S.FAILED),
        (lambda p: outcome.publish_failed(p, ConnectFailedError("refused"), ctx=ctx()),
         S.WAITING),
        (lambda p: outcome.publish_failed(p, ConnectionLostError("cut"), ctx=ctx()),
         S.UNCONFIRMED),
        (lambda p: outcome.publish_failed(p, StatusError("no", status=400,
                                                          outcome=Outcome.REJECTED), ctx=ctx()),
         S.FAILED),
        (lambda p: outcome.checked(dataclasses.replace(p, state=S.UNCONFIRMED),
                                   CheckResult(CheckStatus.NOT_PROCESSED), ctx=ctx()), S.QUEUED),
    ],
    ids=["processed", "processing", "refused", "not-sent", "ambiguous", "rejected",
         "check-not-processed"],
)  # fmt: skip
def test_every_decision_that_learns_the_outcome_drops_the_intent(decide: Any, to: S) -> None:
    t = decide(post(extra=SENT))
    assert t.to is to
    assert outcome.PUBLISH_SENT not in t.fields["extra"]
    assert t.fields["extra"]["publish_id"] == "p1"
