from __future__ import annotations

import pytest

from shared.retry_policy import MAX_DELAY_SECONDS, Action, Decision, Outcome, decide

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("outcome", "attempts", "retry_at", "jitter", "expected"),
    [
        (Outcome.DONE, 1, None, 0.0, Decision(Action.ACK)),
        (Outcome.DONE, 9, None, 0.0, Decision(Action.ACK)),
        (Outcome.DUPLICATE, 1, None, 0.0, Decision(Action.ACK)),
        (Outcome.LEASE_LOST, 2, None, 0.0, Decision(Action.ACK)),
        (Outcome.MALFORMED, 1, None, 0.0, Decision(Action.FAIL)),
        (Outcome.PERMANENT, 1, None, 0.0, Decision(Action.FAIL)),
        (Outcome.BUDGET, 1, None, 0.0, Decision(Action.REQUEUE, 0)),
        (Outcome.BUDGET, 6, None, 0.0, Decision(Action.REQUEUE, 0)),  # continuing is not failing
        (Outcome.RATE_LIMITED, 1, NOW + 30, 0.0, Decision(Action.REQUEUE, 31)),
        (Outcome.RATE_LIMITED, 1, NOW + 30, 0.5, Decision(Action.REQUEUE, 36)),
        (Outcome.RATE_LIMITED, 6, NOW + 30, 0.0, Decision(Action.REQUEUE, 31)),  # does not burn retries
        (Outcome.RATE_LIMITED, 1, None, 0.0, Decision(Action.REQUEUE, 61)),
        (Outcome.RATE_LIMITED, 1, NOW - 5, 0.0, Decision(Action.REQUEUE, 1)),  # reset already passed
        (Outcome.BUSY, 1, NOW + 600, 0.0, Decision(Action.REQUEUE, 601)),
        (Outcome.BUSY, 6, NOW + 600, 0.0, Decision(Action.REQUEUE, 601)),  # a new message: attempts stay 1
        (Outcome.BUSY, 1, None, 0.0, Decision(Action.REQUEUE, 61)),
        (Outcome.TRANSIENT, 1, None, 0.0, Decision(Action.RETRY, 60)),
        (Outcome.TRANSIENT, 2, None, 0.0, Decision(Action.RETRY, 120)),
        (Outcome.TRANSIENT, 5, None, 0.0, Decision(Action.RETRY, 960)),
        (Outcome.TRANSIENT, 5, None, 0.5, Decision(Action.RETRY, 1200)),
        (Outcome.TRANSIENT, 6, None, 0.0, Decision(Action.FAIL)),  # max_retries spent: never stacks past it
    ],
)
def test_decisions(
    outcome: Outcome, attempts: int, retry_at: float | None, jitter: float, expected: Decision
) -> None:
    assert (
        decide(
            outcome,
            attempts=attempts,
            max_retries=5,
            now=NOW,
            base_delay=60,
            retry_at=retry_at,
            jitter=jitter,
        )
        == expected
    )


@pytest.mark.parametrize(
    ("busy", "expected"),
    [
        (0, Decision(Action.REQUEUE, 601)),  # the first answer waits for the lease to end
        (5, Decision(Action.REQUEUE, 601)),  # then max_retries more, each waiting for the (renewed) lease
        (6, Decision(Action.FAIL)),  # then this copy is dead-lettered: a busy answer is not for ever
    ],
)
def test_busy_answers_are_bounded_by_the_lease_and_the_retries(busy: int, expected: Decision) -> None:
    assert decide(Outcome.BUSY, attempts=1, max_retries=5, now=NOW, retry_at=NOW + 600, busy=busy) == expected


def test_every_outcome_has_a_decision() -> None:
    for outcome in Outcome:
        decide(outcome, attempts=1, max_retries=5, now=NOW)


def test_delays_are_capped_at_twelve_hours() -> None:
    decision = decide(Outcome.TRANSIENT, attempts=20, max_retries=30, now=NOW, base_delay=60)
    assert decision == Decision(Action.RETRY, MAX_DELAY_SECONDS)
    assert (
        decide(Outcome.RATE_LIMITED, attempts=1, max_retries=5, now=NOW, retry_at=NOW + 10**6).delay_seconds
        == MAX_DELAY_SECONDS
    )
