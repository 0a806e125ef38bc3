"""How one consumer invocation's crawl ended: read by the core (ack, retry, fail) and by the upkeep."""

from __future__ import annotations

from dataclasses import dataclass

from shared.ports import Row
from shared.states import Outcome
from shared.store import Calls


@dataclass
class CrawlResult:
    """How the invocation ended; `retry_at` is when a retry can succeed (429 reset, lease expiry)."""

    outcome: Outcome
    reason: str = ""
    retry_at: float | None = None
    finished_run: Row | None = None  # the run's row, when this invocation's write finished the run
    job: Row | None = None
    # Calls no write of this invocation has counted yet, the failing write included: the core fails the job
    # with them, so a job failed without a hand-back (refused credentials) still counts what it spent.
    unreported: Calls | None = None

    @property
    def run_finished(self) -> bool:
        return self.finished_run is not None
