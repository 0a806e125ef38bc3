"""What to do with a message after an outcome: a pure function, table-tested."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shared.limits import MAX_DELAY_SECONDS
from shared.states import Outcome

__all__ = ["Action", "Decision", "Outcome", "decide"]


class Action(enum.Enum):
    ACK = "ack"
    RETRY = "retry"  # msg.retry(delaySeconds): counts against max_retries
    REQUEUE = "requeue"  # ack and send a continuation: does not burn the message's retries
    FAIL = "fail"  # record the failure, then ack


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_seconds: int = 0


def decide(
    outcome: Outcome,
    *,
    attempts: int,
    max_retries: int,
    now: float,
    base_delay: int = 60,
    retry_at: float | None = None,
    jitter: float = 0.0,
    busy: int = 0,
) -> Decision:
    """Map an outcome to an action.

    `attempts` is the message's delivery count (1 on first delivery); `retry_at` is when a retry can
    succeed (a rate-limit reset or a lease expiry); `jitter` in [0, 1) spreads retries apart; `busy` is
    how many "busy" answers the message has had in a row before this one.
    """
    if outcome in (Outcome.DONE, Outcome.DUPLICATE, Outcome.LEASE_LOST):
        return Decision(Action.ACK)
    if outcome in (Outcome.PERMANENT, Outcome.MALFORMED):
        return Decision(Action.FAIL)
    if outcome is Outcome.BUDGET:
        return Decision(Action.REQUEUE, 0)
    if outcome is Outcome.RATE_LIMITED:
        wait = (retry_at - now) if retry_at is not None else base_delay
        return Decision(Action.REQUEUE, _clamp(wait + 1 + jitter * 10))
    if outcome is Outcome.BUSY:
        # Come back when the lease ends: the holder has finished by then, or the job is reclaimed. A new
        # message, because a retry would spend this one's attempts on someone else's work. Bounded: past
        # the lease's end and then `max_retries` more answers, this copy gives up (the holder goes on).
        if busy > max_retries:
            return Decision(Action.FAIL)
        wait = (retry_at - now) if retry_at is not None else base_delay
        return Decision(Action.REQUEUE, _clamp(wait + 1 + jitter * 10))
    if outcome is Outcome.TRANSIENT:
        if attempts > max_retries:
            return Decision(Action.FAIL)
        backoff = base_delay * 2 ** (attempts - 1)
        return Decision(Action.RETRY, _clamp(backoff * (1 + jitter / 2)))
    raise ValueError(f"unknown outcome {outcome!r}")


def _clamp(seconds: float) -> int:
    return max(1, min(MAX_DELAY_SECONDS, int(seconds)))
