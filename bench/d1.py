"""D1 as a Worker sees it: a round trip that many callers wait out at once, SQL run one call at a time."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from bench.probe import Probe
from shared.ports import BatchShortcuts, Clock, Database, Result, Statement


@dataclass(frozen=True)
class Latency:
    """A round-trip time drawn uniformly from mean_s ± jitter_s."""

    mean_s: float
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if self.mean_s < 0 or not 0 <= self.jitter_s <= self.mean_s:
            raise ValueError(
                f"latency must be >= 0 with 0 <= jitter <= mean, got {self.mean_s!r} ± {self.jitter_s!r}"
            )

    def draw(self, rng: random.Random) -> float:
        return self.mean_s + (rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0)


class D1Model(BatchShortcuts):
    """Wraps a serialising Database (SqliteDatabase holds a lock): latency overlaps, execution does not.

    Half the round trip is spent before the statements reach the database and half after, so calls
    queue for the database in the order their requests arrive, as they would at a D1 primary.
    """

    def __init__(
        self, db: Database, clock: Clock, latency: Latency, *, probe: Probe | None = None, seed: int = 0
    ) -> None:
        self._db = db
        self._clock = clock
        self._latency = latency
        self._probe = probe
        self._rng = random.Random(seed)
        self.calls = 0

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """One round trip: wire, then the database (one caller at a time), then wire back."""
        self.calls += 1
        if self._probe is not None:
            self._probe.count("d1")
        try:
            round_trip = self._latency.draw(self._rng)
            await self._clock.sleep(round_trip / 2)
            results = await self._db.batch(statements)
            await self._clock.sleep(round_trip / 2)
            return results
        finally:
            if self._probe is not None:
                self._probe.finished("d1")
