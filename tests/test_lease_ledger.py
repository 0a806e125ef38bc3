"""The local runner's lease ledger forgets settled leases off the consumers' path (local/runner.py).

The ledger is local-only (the Worker keeps none), so its prune must not cost a crawl invocation a D1 round
trip: in the 10,000-streamer benchmark (S2) 42 invocations each waited on a prune of their own, started
together because every batch past the mark began one while the first was still in flight.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from local import runner as local_runner
from local.runner import LeaseLedger
from shared.ports import BatchShortcuts, Result, Row, Statement
from tests.conftest import StackFactory

PRUNE = "SELECT id, lease_token FROM jobs WHERE status = 'running'"


def claimed(job_id: int, token: str) -> Result:
    """A claim's RETURNING row, as the ledger notes it."""
    return Result(rows=[{"id": job_id, "status": "running", "lease_token": token, "reclaims": 0}])


async def claim(ledger: LeaseLedger) -> None:
    """One claim through the ledger; a ledger that waited on its gated prune would hang here, so it fails."""
    await asyncio.wait_for(ledger.batch([Statement("claim", ())]), timeout=5)


class GatedDatabase(BatchShortcuts):
    """Answers claims from a script; a prune waits for `open_gate` and answers `running`."""

    def __init__(self) -> None:
        self.next: list[Result] = []
        self.running: list[Row] = []
        self.gate = asyncio.Event()
        self.prunes = 0
        self.sent: list[Statement] = []

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        self.sent.extend(statements)
        if statements[0].sql.startswith(PRUNE):
            self.prunes += 1
            await self.gate.wait()
            return [Result(rows=list(self.running))]
        return [self.next.pop(0)]


async def past_the_mark(
    monkeypatch: pytest.MonkeyPatch, answers: list[Result]
) -> tuple[GatedDatabase, LeaseLedger]:
    """A ledger whose mark is 2, after three claims: the third started a prune, which waits on its gate."""
    monkeypatch.setattr(local_runner, "LEDGER_PRUNE_AT", 2)
    db = GatedDatabase()
    ledger = LeaseLedger(db)
    db.next = answers
    for _ in range(3):
        await claim(ledger)
    return db, ledger


async def test_a_batch_past_the_mark_returns_without_waiting_for_the_prune(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, ledger = await past_the_mark(
        monkeypatch,
        [
            claimed(1, "a"),
            claimed(2, "b"),
            claimed(3, "c"),
            claimed(4, "d"),
        ],
    )
    await asyncio.sleep(0)
    assert db.prunes == 1  # started, and still waiting on its gate: the claims above did not wait for it
    await claim(ledger)
    await asyncio.sleep(0)
    assert db.prunes == 1  # one at a time: a batch past the mark while a prune is in flight starts none


async def test_a_prune_keeps_the_leases_noted_while_it_ran_and_drops_the_settled_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, ledger = await past_the_mark(
        monkeypatch,
        [
            claimed(1, "a"),
            claimed(2, "b"),
            claimed(3, "c"),
            claimed(4, "d"),
            claimed(2, "b2"),
        ],
    )
    await asyncio.sleep(0)
    assert db.prunes == 1  # it asks about jobs 1-3
    await claim(ledger)  # job 4 claimed meanwhile
    await claim(ledger)  # job 2 settled and claimed again by a continuation
    db.running = [{"id": 3, "lease_token": "c"}]  # when the query runs, of 1-3 only job 3 is still leased
    db.gate.set()
    pruning = ledger._pruning
    assert pruning is not None
    await asyncio.wait_for(pruning, timeout=5)
    assert ledger.held == {2: "b2", 3: "c", 4: "d"}


async def test_release_waits_for_a_prune_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hard stop during a prune hands back what the prune kept, not what it was about to drop."""
    db, ledger = await past_the_mark(
        monkeypatch,
        [
            claimed(1, "a"),
            claimed(2, "b"),
            claimed(3, "c"),
            Result(changes=1),
        ],
    )
    db.running = [{"id": 2, "lease_token": "b"}]
    release = asyncio.create_task(ledger.release(0.0))
    await asyncio.sleep(0)
    assert not release.done()
    db.gate.set()
    assert await asyncio.wait_for(release, timeout=5) == 1
    handed_back = db.sent[-1]
    assert handed_back.sql.startswith("UPDATE jobs SET status = 'queued'")
    assert json.loads(handed_back.params[1]) == [[2, "b"]]
    assert ledger.held == {}


async def test_a_long_crawl_prunes_the_ledger_a_bounded_number_of_times(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_runner, "LEDGER_PRUNE_AT", 20)
    stack = await make_stack(80, concurrency=5)
    inner = stack.runner.leases.db
    prunes = 0

    class Counting(BatchShortcuts):
        async def batch(self, statements: Sequence[Statement]) -> list[Result]:
            nonlocal prunes
            prunes += statements[0].sql.startswith(PRUNE)
            return await inner.batch(statements)

    stack.runner.leases.db = Counting()
    started = await stack.runner.crawl()
    jobs = await stack.db.all("SELECT status FROM jobs WHERE run_id = ?", started.run_id)
    assert [j["status"] for j in jobs] == ["done"] * 80
    # After a prune at most the 5 leases in flight stay noted: the next comes 15 claims later at the soonest.
    assert 1 <= prunes <= 80 // (20 - 5) + 1
    assert len(stack.runner.leases.held) <= 20 + 5
