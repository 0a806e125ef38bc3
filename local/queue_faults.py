"""Delivery faults for the simulated queue: duplicates, lost acks, out-of-order and late delivery.

Cloudflare Queues deliver at least once; these make "at least" bite. Each fault has a rate and draws
from `random.Random(seed)` a fixed number of times per message picked (or settled), so the same seed
gives the same schedule whenever messages reach the queue in the same order.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass, fields

from local.queue import Envelope, Outcome, SimulatedQueue


@dataclass(frozen=True)
class QueueFaults:
    """What goes wrong between the queue and its consumer, and how often. Rates are per delivery."""

    seed: int = 0
    duplicate_rate: float = 0.0  # the message is delivered a second time...
    duplicate_concurrent_share: float = 0.5  # ...this share of them at once, in a parallel invocation...
    duplicate_later_s: tuple[int, int] = (1, 600)  # ...the rest this many seconds later
    lost_ack_rate: float = 0.0  # the consumer's ack is lost: the message comes back as if retried
    reorder_rate: float = 0.0  # a random visible message goes out instead of the oldest
    delay_rate: float = 0.0  # a visible message is held back...
    delay_s: tuple[int, int] = (1, 300)  # ...for this many seconds

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_rate", "_share")) and not 0.0 <= value <= 1.0:
                raise ValueError(f"QueueFaults.{f.name} is {value!r}; it must be between 0 and 1")
            if f.name.endswith("_s") and not 0 <= value[0] <= value[1]:
                raise ValueError(f"QueueFaults.{f.name} is {value!r}; need 0 <= low <= high")


class QueueFaultInjector:
    """A DeliveryFaults for one SimulatedQueue, installed by the constructor; `injected` counts faults."""

    def __init__(self, queue: SimulatedQueue, faults: QueueFaults) -> None:
        self.queue = queue
        self.faults = faults
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(f"{faults.seed}:queue")
        queue.faults = self

    def pick(self, ready: deque[Envelope], limit: int) -> list[Envelope]:
        """Take up to `limit` messages, maybe not the oldest, holding some back and doubling others."""
        f = self.faults
        picked: list[Envelope] = []
        twins: list[Envelope] = []
        while ready and len(picked) < limit:
            roll_order, roll_index, roll_delay, roll_wait, roll_twin, roll_when, roll_later = (
                self._rng.random() for _ in range(7)
            )
            index = int(roll_index * len(ready)) if roll_order < f.reorder_rate else 0
            if index:
                self.injected["reordered"] += 1
            envelope = ready[index]
            del ready[index]
            if roll_delay < f.delay_rate:
                self.injected["delayed"] += 1
                self._hide(envelope, _within(f.delay_s, roll_wait))
                continue
            if roll_twin < f.duplicate_rate:
                twin = Envelope(envelope.id, envelope.body_json, envelope.timestamp, envelope.attempts)
                if roll_when < f.duplicate_concurrent_share:
                    self.injected["duplicate_concurrent"] += 1
                    twins.append(twin)
                else:
                    self.injected["duplicate_later"] += 1
                    self._hide(twin, _within(f.duplicate_later_s, roll_later))
            picked.append(envelope)
        # First in line for the next invocation, which the queue starts alongside this one if it may.
        ready.extendleft(reversed(twins))
        return picked

    def settle(self, envelope: Envelope, outcome: Outcome) -> Outcome:
        """Lose an ack now and then: the message is retried with the consumer's default delay."""
        roll_lost = self._rng.random()
        if outcome.ack and roll_lost < self.faults.lost_ack_rate:
            self.injected["lost_ack"] += 1
            return Outcome(ack=False)
        return outcome

    def _hide(self, envelope: Envelope, seconds: float) -> None:
        # The queue's own path for delayed sends and retries; it also wakes a drain waiting for messages.
        self.queue._store(envelope, self.queue.clock.now() + seconds)


def _within(bounds: tuple[int, int], roll: float) -> int:
    low, high = bounds
    return low + int(roll * (high - low + 1))
