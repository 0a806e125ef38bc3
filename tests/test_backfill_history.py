"""Issue 15 item 3: a 5-year backfill of a 20,000-clip channel on the Free plan (emulator in process)."""

from __future__ import annotations

from collections import Counter

import pytest

from local.resume import resume_unfinished
from local.runner import LocalRunner
from shared.config import Settings
from shared.errors import ConfigError
from shared.timefmt import parse_rfc3339
from tests.conftest import StackFactory
from tests.history_support import YEARS, Truth, history_stack, start_backfill


async def test_five_years_are_backfilled_completely_within_the_free_plan(make_stack: StackFactory) -> None:
    # The crawl's own Get Clips pages are counted: the upkeep's Get Clips by id checks are off here.
    stack = await history_stack(make_stack, verify_external_share=0.0)
    truth = Truth.of(stack)
    days = YEARS * 365
    assert 19_000 <= len(truth.ids) <= 21_000
    assert 0.27 <= sum(1 for d in range(days) if truth.per_day[d] == 0) / days <= 0.33
    assert sum(1 for n in truth.per_day.values() if n > 1_000) >= 3
    before = Counter(stack.emulator.requests)
    stack.emulator.needed.reset()
    run_id = await start_backfill(stack)
    await stack.runner.drain()
    calls = (Counter(stack.emulator.requests) - before)["/helix/clips"]
    needed = stack.emulator.needed.total()
    assert truth.ids - await stack.clip_ids() == set(), "no clip missed"
    log = stack.runner.invocations
    assert max(log.external) <= 50 and max(log.internal) <= 50
    job = await stack.db.first("SELECT status, invocations, window_span FROM jobs WHERE run_id = ?", run_id)
    assert job["status"] == "done" and job["invocations"] > 1  # continued across invocations
    print(
        f"helix clip calls {calls}, needed {needed}, ratio {calls / needed:.3f}, "
        f"invocations {len(log.external)}"
    )
    # Issue 15 asks for 1.2x; this walk measures 1.15x (232 calls for 201 needed; 261 before the early
    # splits, the walk state carried across continuations and the density restored past a busy stretch).
    # The excess: windows past the cap where the channel's rate rose (10 calls each), two calls for each busy
    # day, and a partial last page per window.
    assert calls <= 1.2 * needed


async def backfill_calls(make_stack: StackFactory, **settings: object) -> tuple[int, int, int]:
    """(Get Clips calls, calls needed, invocations) of a complete backfill of the 5-year channel."""
    stack = await history_stack(make_stack, verify_external_share=0.0, **settings)
    truth = Truth.of(stack)
    before = Counter(stack.emulator.requests)
    stack.emulator.needed.reset()
    await start_backfill(stack)
    await stack.runner.drain()
    assert truth.ids - await stack.clip_ids() == set()
    # The run's counters add what each page write added to its job's: every clip counted new once.
    run = await stack.db.first("SELECT clips_new, clips_updated FROM runs")
    jobs = await stack.db.first("SELECT sum(clips_new) AS new, sum(clips_updated) AS updated FROM jobs")
    assert (run["clips_new"], run["clips_updated"]) == (jobs["new"], jobs["updated"])
    assert run["clips_new"] == len(await stack.clip_ids())
    calls = (Counter(stack.emulator.requests) - before)["/helix/clips"]
    return calls, stack.emulator.needed.total(), len(stack.runner.invocations.external)


async def test_a_backfill_cut_into_four_times_as_many_invocations_stays_within_its_bound(
    make_stack: StackFactory,
) -> None:
    # Each continuation starts from the job row: the walk's splits, measured density and the window in
    # flight's clips go with it (jobs.walk_state). 20 invocations measure 231 calls (5 invocations: 232).
    calls, needed, invocations = await backfill_calls(make_stack, external_limit=12)
    assert invocations >= 16
    assert calls <= 1.2 * needed, (calls, needed)


async def test_an_interrupted_backfill_resumes_at_the_window_in_flight(make_stack: StackFactory) -> None:
    """Stopped after two invocations (Ctrl-C: no new message taken), then a fresh runner with a fresh queue
    (the lost continuation message, a new process) resumes it: no window before the one in flight is read
    again, and the history ends complete."""
    stack = await history_stack(make_stack)
    truth = Truth.of(stack)
    requested: list[tuple[float, float]] = []
    record = stack.emulator.needed.record

    def spy(broadcaster: str, start: float, end: float) -> None:
        requested.append((start, end))
        record(broadcaster, start, end)

    stack.emulator.needed.record = spy
    run_id = await start_backfill(stack)
    seen: list[object] = []

    def stop_after_two(verdict: object) -> None:
        seen.append(verdict)
        if len(seen) == 2:
            stack.runner.stop()

    await stack.runner.drain(stop_after_two)
    job = await stack.db.first(
        "SELECT status, window_start, window_end, invocations FROM jobs WHERE run_id = ?", run_id
    )
    assert job["status"] == "queued" and job["window_start"] and job["invocations"] == 2
    in_flight = parse_rfc3339(job["window_start"])
    before = len(requested)
    assert 0 < len(truth.ids & await stack.clip_ids()) < len(truth.ids)  # part-way

    fresh = LocalRunner(stack.db, stack.http, stack.settings, stack.clock, concurrency=1)
    stack.clock.advance(stack.settings.lease_seconds + 1)
    resumed = await resume_unfinished(stack.db, fresh.queue, stack.clock)
    assert len(resumed.job_ids) == 1
    await fresh.drain()
    after = requested[before:]
    assert after and min(start for start, _ in after) >= in_flight, (
        "a window before the one in flight was re-read"
    )
    assert truth.ids - await stack.clip_ids() == set()
    done = await stack.db.first("SELECT status FROM jobs WHERE run_id = ?", run_id)
    assert done["status"] == "done"


def test_the_backfill_settings_must_be_positive() -> None:
    for name in ("backfill_window_days", "backfill_window_clips"):
        with pytest.raises(ConfigError, match=f"{name} has value 0; it must be at least 1"):
            Settings(**{name: 0}).validated()
