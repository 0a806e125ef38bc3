"""The dashboard's runs: a run with failed jobs is marked apart, the chart keeps small runs visible, and a
run's
working time is shown apart from the time it sat idle waiting for a retry of its failed jobs."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.d1_meter import MiniflareD1, node_available
from producer.dashboard.chart import CLIPS_HEIGHT, MIN_BAR, runs_chart, scaled
from producer.dashboard.run_times import run_times
from shared.ports import Statement
from tests import api_support
from tests.api_support import ApiFactory
from tests.test_dashboard import counters, log_in, table_rows

make_api = api_support.make_api
HOUR = 3600
T0 = "2026-11-22T04:00:00Z"
needs_node = pytest.mark.skipif(
    not node_available(), reason="node and the pinned miniflare (npm ci) are needed"
)


async def test_a_run_that_finished_with_failed_jobs_is_not_shown_as_a_clean_finish(
    make_api: ApiFactory,
) -> None:
    api = await make_api(4)
    clean = (await api.stack.runner.crawl()).run_id
    api.stack.clock.advance(HOUR)
    failed = await api.fail_streamer("10000000")
    await log_in(api)
    overview = (await api.get("/", token=None)).text
    statuses = {row[0]: row[1] for row in table_rows(overview, "runs")}
    assert statuses == {str(clean): "finished", str(failed): "finished, 25% failed"}
    assert '<span class="badge finished">finished</span>' in overview
    assert 'class="badge finished-failed" title="1 of 4 jobs failed"' in overview
    page = (await api.get(f"/ui/runs/{failed}", token=None)).text
    assert re.search(r"<h1>Run \d+ <span class=\"badge finished-failed\"", page)


async def test_after_a_late_retry_the_run_shows_its_working_time_apart_from_the_idle_time(
    make_api: ApiFactory,
) -> None:
    api = await make_api(3)
    run_id = await api.fail_streamer("10015838")
    api.stack.clock.advance(1727 * HOUR)  # the retry button pressed ten weeks later
    csrf = await log_in(api)
    assert (
        await api.post(f"/ui/runs/{run_id}/retry-failed", token=None, data={"csrf": csrf})
    ).status_code == 303
    api.stack.clock.advance(30)
    await api.stack.runner.drain()
    run = await api.run(run_id)
    assert run["status"] == "finished" and run["jobs_failed"] == 0
    page = (await api.get(f"/ui/runs/{run_id}", token=None)).text
    shown = counters(page)
    assert "h" not in shown["duration"], shown  # seconds of work, not 1727 h
    assert shown["idle"].startswith(("1727 h", "1726 h")), shown
    [row] = table_rows((await api.get("/ui/runs", token=None)).text, "runs")
    assert row[4].startswith(shown["duration"]) and ("+ 1727 h" in row[4] or "+ 1726 h" in row[4]), row
    assert row[1] == "finished"  # the failed job succeeded on retry: a clean finish now


async def test_a_run_without_idle_time_shows_no_idle_counter(make_api: ApiFactory) -> None:
    api = await make_api(2)
    run_id = (await api.stack.runner.crawl()).run_id
    await log_in(api)
    shown = counters((await api.get(f"/ui/runs/{run_id}", token=None)).text)
    assert "idle" not in shown and "h" not in shown["duration"]


@needs_node
async def test_the_idle_time_query_runs_on_d1() -> None:
    """Window functions and julianday() on Miniflare's D1, as on Cloudflare: one gap of 3 h is idle."""
    db = await MiniflareD1.open()
    try:
        await db.batch(
            [
                Statement(
                    "INSERT INTO streamers (id, login, display_name, added_at) VALUES ('s1', 'a', 'A', ?)",
                    (T0,),
                ),
                Statement(
                    "INSERT INTO streamers (id, login, display_name, added_at) VALUES ('s2', 'b', 'B', ?)",
                    (T0,),
                ),
                Statement(
                    "INSERT INTO runs (id, kind, status, created_at, enqueued_at, finished_at) "
                    "VALUES (1, 'manual', 'finished', ?, ?, ?)",
                    (T0, T0, "2026-11-22T07:01:00Z"),
                ),
                Statement(
                    "INSERT INTO jobs (run_id, streamer_id, status, due_at, created_at, started_at, "
                    "finished_at) "
                    "VALUES (1, 's1', 'done', ?, ?, ?, '2026-11-22T04:00:40Z')",
                    (T0, T0, T0),
                ),
                Statement(
                    "INSERT INTO jobs (run_id, streamer_id, status, due_at, created_at, started_at, "
                    "finished_at) "
                    "VALUES (1, 's2', 'done', ?, ?, ?, '2026-11-22T07:01:00Z')",
                    (T0, T0, T0),
                ),
            ]
        )
        run = await db.first("SELECT * FROM runs WHERE id = 1")
        time = (await run_times(db, [run], 0.0))[1]
    finally:
        await db.close()
    assert time.span_s == 3 * HOUR + 60 and time.idle_s == 3 * HOUR + 20 and time.working_s == 40


def bar_heights(svg: str) -> dict[str, list[float]]:
    """Per run: the heights of its new, updated and failed bars."""
    return {
        run: [float(h) for h in re.findall(r'height="([\d.]+)"', group)]
        for run, group in re.findall(r'<g data-run="(\d+)">(.*?)</g>', svg)
    }


def run_row(run_id: int, new: int, updated: int = 0, failed: int = 0) -> dict[str, object]:
    return {
        "id": run_id,
        "created_at": "2026-11-22T04:00:00Z",
        "clips_new": new,
        "clips_updated": updated,
        "jobs_failed": failed,
    }


def test_one_large_run_does_not_flatten_the_others() -> None:
    runs = [run_row(1, 40_000)] + [run_row(i, 25, 60) for i in range(2, 12)] + [run_row(12, 0, 1, 1)]
    svg = runs_chart(runs)
    heights = bar_heights(svg)
    assert heights["1"][0] == CLIPS_HEIGHT
    for run in map(str, range(2, 12)):
        new, updated, _ = heights[run]
        assert new + updated >= 0.04 * CLIPS_HEIGHT and new >= MIN_BAR / 2  # ~6 px: visible, not a hairline
    new, updated, failed = heights["12"]
    assert new == 0 and updated >= MIN_BAR and failed > 0  # one updated clip and one failure still show
    assert "square-root scale" in svg and ">10,000<" in svg  # a quarter of the top, labelled halfway up


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 5000)), min_size=1, max_size=30
    )
)
def test_bars_are_visible_when_non_zero_and_never_overflow(counts: list[tuple[int, int, int]]) -> None:
    heights = bar_heights(runs_chart([run_row(i + 1, *c) for i, c in enumerate(counts)]))
    most = max(1, max(n + u for n, u, _ in counts))
    for i, (new, updated, failed) in enumerate(counts):
        h_new, h_updated, h_failed = heights[str(i + 1)]
        assert (
            (h_new > 0) == (new > 0) and (h_updated > 0) == (updated > 0) and (h_failed > 0) == (failed > 0)
        )
        assert h_new + h_updated <= CLIPS_HEIGHT + 0.1
        assert abs(h_new + h_updated - round(scaled(new + updated, most, CLIPS_HEIGHT), 1)) <= 0.2
