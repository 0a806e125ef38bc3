"""Twitch's traps, one test each: the calls a crawl makes against the emulator's `needed` figure, and 0
lost."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from local.emulator.faults import HelixFaultInjector, HelixFaults
from shared.timefmt import parse_rfc3339
from tests.conftest import Stack, StackFactory

APPEAR_SLACK = 300  # the emulator shows a clip up to 2 minutes after its creation


async def lost_clips(stack: Stack) -> set[str]:
    """Clips that existed when their job started crawling, inside its range, and are not stored."""
    expected: set[str] = set()
    for job in await stack.db.all("SELECT streamer_id, crawl_from, crawl_to, started_at FROM jobs"):
        end = min(parse_rfc3339(job["crawl_to"]), parse_rfc3339(job["started_at"]) - APPEAR_SLACK)
        expected |= {
            c["id"] for c in stack.world.clips(job["streamer_id"], parse_rfc3339(job["crawl_from"]), end)
        }
    return expected - await stack.clip_ids()


class Crawl:
    """One crawl's Helix calls, as the emulator counted them, beside what it says they needed."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def __call__(self, **kwargs: Any) -> Crawl:
        emulator = self.stack.emulator
        emulator.needed.reset()
        before = Counter(emulator.requests)
        minted = emulator.tokens_minted
        await self.stack.runner.crawl(**kwargs)
        self.requests = Counter(emulator.requests) - before
        self.mints = emulator.tokens_minted - minted
        self.needed = emulator.needed.total()
        self.per_streamer = emulator.needed.needed()
        return self

    @property
    def clip_calls(self) -> int:
        return self.requests["/helix/clips"]


async def trapped(make_stack: StackFactory, streamers: int, faults: HelixFaults, **options: Any) -> Stack:
    injector = HelixFaultInjector(faults)
    # These count the crawl's own Get Clips pages: the upkeep's Get Clips by id checks are off here.
    options.setdefault("verify_external_share", 0.0)
    stack = await make_stack(streamers, wrap=injector.wrap, **options)
    stack.injector = injector  # type: ignore[attr-defined]
    return stack


def ids(stack: Stack, indexes: range) -> frozenset[str]:
    streamers = stack.world.all_streamers()
    return frozenset(streamers[i].id for i in indexes)


async def test_a_cursor_that_loops_at_the_end_costs_one_call_per_window_not_a_split(
    make_stack: StackFactory,
) -> None:
    stack = await trapped(make_stack, 6, HelixFaults())
    looping = ids(stack, range(3))
    stack.injector.faults = replace(stack.injector.faults, looping_broadcasters=looping)  # type: ignore[attr-defined]
    heavy = stack.world.all_streamers()[0].id
    stack.world.set_rate(heavy, 450)  # several pages, the last one short and looping back to itself
    crawl = await Crawl(stack)()
    assert await lost_clips(stack) == set()
    # Each looping streamer's one window costs one call more than it needs: the repeated page adds
    # nothing, so the walk ends there. Nothing is halved and re-read.
    assert crawl.clip_calls == crawl.needed + len(looping)
    assert crawl.per_streamer[heavy] == 5
    jobs = {r["streamer_id"]: r for r in await stack.db.all("SELECT * FROM jobs")}
    assert {s for s, j in jobs.items() if j["stop_reason"] == "repeated_cursor"} == looping
    assert all(j["pages"] == crawl.per_streamer[s] + (s in looping) for s, j in jobs.items())


async def test_an_empty_page_with_a_cursor_ends_the_walk(make_stack: StackFactory) -> None:
    stack = await trapped(make_stack, 6, HelixFaults())
    trap = ids(stack, range(3, 6))
    stack.injector.faults = replace(stack.injector.faults, empty_page_broadcasters=trap)  # type: ignore[attr-defined]
    crawl = await Crawl(stack)()
    assert await lost_clips(stack) == set()
    assert crawl.clip_calls == crawl.needed + len(trap)  # the empty page is read once, its cursor never
    assert stack.injector.injected["empty_page_cursor"] == 2 * len(trap)  # type: ignore[attr-defined]
    jobs = await stack.db.all("SELECT stop_reason FROM jobs")
    assert {j["stop_reason"] for j in jobs} == {"complete"}


async def test_a_heavy_streamer_past_the_cap_pays_once_to_find_its_span_then_reads_each_clip_once(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(1, verify_external_share=0.0)  # the crawl's own pages, no by-id checks
    streamer = stack.world.all_streamers()[0]
    stack.world.set_rate(streamer.id, 2500)
    first = await Crawl(stack)(streamer_ids=[streamer.id])
    assert await lost_clips(stack) == set()
    assert first.needed >= 25
    # The first crawl finds where the cap bites: one walk of the whole day up to the cap is thrown away,
    # then the windows are sized from what the walks read instead of halving 24 h -> 12 h -> 6 h.
    split_at = stack.settings.split_at_pages
    assert first.clip_calls <= first.needed + split_at + 3, (first.clip_calls, first.needed)
    span = (await stack.db.first("SELECT window_span FROM streamers"))["window_span"]
    assert 4 * 3600 <= span <= 12 * 3600  # ~100 clips an hour, windows of ~900
    stack.clock.advance(3600)
    second = await Crawl(stack)(streamer_ids=[streamer.id])
    assert await lost_clips(stack) == set()
    # The next crawl starts from the span that worked: no walk is thrown away.
    assert second.clip_calls <= 1.10 * second.needed, (second.clip_calls, second.needed)


async def test_a_revoked_token_is_minted_again_once_across_concurrent_consumers(
    make_stack: StackFactory,
) -> None:
    stack = await trapped(make_stack, 40, HelixFaults(expire_tokens_at=(12,)), concurrency=10)
    stack.injector.active = False  # type: ignore[attr-defined]
    await stack.runner.tick()  # the producer mints the run's token before the fan-out
    stack.injector.active = True  # type: ignore[attr-defined]
    stack.injector.requests = 0  # type: ignore[attr-defined]
    stack.emulator.needed.reset()
    minted = stack.emulator.tokens_minted
    before = Counter(stack.emulator.requests)
    unauthorized = stack.emulator.statuses[401]
    await stack.runner.drain()
    assert stack.injector.injected["token_expiry"] == 1  # type: ignore[attr-defined]
    assert stack.emulator.tokens_minted - minted == 1, "one mint for one revocation, whoever saw the 401"
    assert await lost_clips(stack) == set()
    refused = stack.emulator.statuses[401] - unauthorized
    assert 1 <= refused <= 10  # the consumers in flight with the revoked token, at most one each
    calls = (Counter(stack.emulator.requests) - before)["/helix/clips"]
    assert calls == stack.emulator.needed.total() + refused
    run = await stack.db.first("SELECT jobs_done, jobs_failed FROM runs")
    assert (run["jobs_done"], run["jobs_failed"]) == (40, 0)


async def test_a_heavy_streamers_continuations_size_its_windows_as_its_first_invocation_does(
    make_stack: StackFactory,
) -> None:
    # A crawl's range is fixed once its first page is written, but its continuations are not a backfill's:
    # they aim at the same ~900 clips a window, and carry no backfill walk state.
    spans, calls = [], []
    for limit in (0, 12):  # the Free plan's 50 Helix calls an invocation; 12, so the crawl continues
        stack = await make_stack(1, verify_external_share=0.0, external_limit=limit)
        streamer = stack.world.all_streamers()[0]
        stack.world.set_rate(streamer.id, 2500)
        crawl = await Crawl(stack)(streamer_ids=[streamer.id])
        assert await lost_clips(stack) == set()
        job = await stack.db.first("SELECT invocations, walk_state FROM jobs")
        assert job["walk_state"] is None and (job["invocations"] > 2) == (limit == 12)
        spans.append((await stack.db.first("SELECT window_span FROM streamers"))["window_span"])
        calls.append(crawl.clip_calls)
    assert calls[1] <= calls[0] + 1, calls
    assert abs(spans[1] - spans[0]) <= 0.1 * spans[0], spans
