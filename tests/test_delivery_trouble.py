"""Postfix's keep/defer/bounce rules (smtp_trouble.c) as a table, and recipient bookkeeping."""

from __future__ import annotations

import pytest

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.state import Recipients
from pyfix_smtp.delivery.trouble import Verdict, judge
from pyfix_smtp.protocol.envelope import Envelope
from pyfix_smtp.status import Failure, Reply

SOFT = Failure("4.2.0", "greylisted")
HARD = Failure("5.1.1", "unknown user")

# (failure, final server, soft_bounce, soft non-final) -> (verdict, reported status, SOFTBOUNCE)
TABLE = [
    (SOFT, False, False, False, Verdict.KEEP, "4.2.0", False),
    (SOFT, True, False, False, Verdict.DEFER, "4.2.0", False),
    (HARD, False, False, False, Verdict.BOUNCE, "5.1.1", False),
    (HARD, True, False, False, Verdict.BOUNCE, "5.1.1", False),
    (HARD, False, True, False, Verdict.KEEP, "5.1.1", False),
    (HARD, True, True, False, Verdict.DEFER, "4.1.1", True),
    (HARD, False, False, True, Verdict.KEEP, "5.1.1", False),
    (HARD, True, False, True, Verdict.BOUNCE, "5.1.1", False),
    (HARD, True, True, True, Verdict.DEFER, "4.1.1", True),
    (SOFT, True, True, True, Verdict.DEFER, "4.2.0", False),
]


@pytest.mark.parametrize(
    ("failure", "final", "soft_bounce", "non_final", "verdict", "status", "softened"), TABLE
)
def test_judge(
    failure: Failure,
    final: bool,
    soft_bounce: bool,
    non_final: bool,
    verdict: Verdict,
    status: str,
    softened: bool,
) -> None:
    result = judge(failure, final_server=final, soft_bounce=soft_bounce, soft_non_final=non_final)
    assert (result.verdict, result.failure.status, result.soft_bounce) == (
        verdict,
        status,
        softened,
    )
    assert result.failure.reason == failure.reason


def recipients(n: int = 3) -> Recipients:
    env = Envelope("s@example.org", [f"r{i}@example.net" for i in range(n)])
    return Recipients(env, arrival=100.0, handoff=110.0, queue_id="Q1")


def test_kept_recipients_stay_for_the_next_session() -> None:
    rcpts = recipients()
    rcpts.fail(0, SOFT, relay="mx1")
    rcpts.done(1, Reply(250, "2.0.0", ("2.0.0 Ok",)), relay="mx1", setup_done=111.0)
    rcpts.final_server = True
    rcpts.fail(2, HARD, relay="mx1")
    rcpts.flush(112.0)
    rcpts.cleanup()
    assert rcpts.left == [0]
    rcpts.fail_all(SOFT, relay="none")
    rcpts.flush(113.0)
    outcomes = rcpts.outcomes()
    assert [o.action for o in outcomes] == [Action.DEFERRED, Action.RELAYED, Action.BOUNCED]
    assert outcomes[1].times is not None
    assert outcomes[1].times.delays == pytest.approx((10.0, 0.0, 1.0, 1.0))
    assert rcpts.events == ["Q1: greylisted"]


def test_a_recipient_gets_only_one_verdict_per_session() -> None:
    rcpts = recipients(1)
    rcpts.fail(0, SOFT, relay="mx1")
    with pytest.raises(AssertionError):
        rcpts.fail(0, HARD, relay="mx1")


def test_missing_outcomes_are_a_bug() -> None:
    rcpts = recipients(2)
    rcpts.final_server = True
    rcpts.fail(0, SOFT, relay="mx1")
    rcpts.flush(120.0)
    with pytest.raises(AssertionError, match=r"without an outcome: \[1\]"):
        rcpts.outcomes()
