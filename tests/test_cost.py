from __future__ import annotations

import pytest

from bench.week import rewrite_everything
from local.cost_model import (
    DAYS_PER_MONTH,
    Projection,
    Usage,
    day_against_free,
    headroom,
    queue_operations,
    render,
)
from local.cost_run import measure
from local.d1_meter import kind_of, node_available, schema_statements
from shared.config import Settings

needs_node = pytest.mark.skipif(not node_available(), reason="node and the pinned miniflare (npm ci) are needed")


@pytest.mark.parametrize(("messages", "retries", "size", "ops"), [
    (0, 0, 1024, 0),
    (1, 0, 1024, 3),  # write, read, delete
    (100, 5, 1024, 305),  # each retry is one more read
    (1, 0, 64 * 1024, 3),
    (1, 0, 64 * 1024 + 1, 6),  # every 64 KB started is charged
    (4800, 0, 200, 14_400),  # the naive day from the issue: 200 streamers hourly
])
def test_queue_operations(messages: int, retries: int, size: int, ops: int) -> None:
    assert queue_operations(messages, retries, size) == ops


@pytest.mark.parametrize(("messages", "retries", "size"), [(-1, 0, 1), (1, -1, 1), (1, 0, 0)])
def test_queue_operations_refuses_nonsense(messages: int, retries: int, size: int) -> None:
    with pytest.raises(ValueError, match=str(min(messages, retries, size))):
        queue_operations(messages, retries, size)


@pytest.mark.parametrize(("used", "quota", "left"), [
    (0, 10_000, 1.0), (8_000, 10_000, 0.2), (10_000, 10_000, 0.0), (14_400, 10_000, -0.44), (5, None, None)])
def test_headroom(used: float, quota: int | None, left: float | None) -> None:
    assert headroom(used, quota) == (None if left is None else pytest.approx(left))


def test_projection_scales_a_crawl_to_a_day_and_a_month_against_both_plans() -> None:
    crawl = Usage(worker_requests=201, queue_operations=600, d1_rows_read=10_000, d1_rows_written=2_000,
                  helix_calls=202)
    rows = {r["metric"]: r for r in Projection(crawl, 24).rows()}
    assert rows["queue_operations"]["day"] == 14_400 and rows["queue_operations"]["month"] == 14_400 * DAYS_PER_MONTH
    assert rows["queue_operations"]["free_headroom"] == pytest.approx(-0.44)
    assert rows["queue_operations"]["paid_headroom"] == pytest.approx(1 - 432_000 / 1_000_000)
    assert rows["d1_rows_written"]["day"] == 48_000 and rows["d1_rows_written"]["free_headroom"] == pytest.approx(0.52)
    assert rows["d1_rows_read"]["free_headroom"] == pytest.approx(1 - 240_000 / 5_000_000)
    assert rows["worker_requests"]["paid_monthly"] is None and rows["worker_requests"]["paid_headroom"] is None
    assert rows["helix_calls"]["day"] == 202 * 24 and rows["helix_calls"]["free_headroom"] is None
    assert "-44%" in render(Projection(crawl, 24))


def test_a_day_against_free_names_what_it_exceeds() -> None:
    verdicts = {v["metric"]: v for v in day_against_free(Usage(50_000, 14_400, 1_000_000, 120_000, 0))}
    assert {m for m, v in verdicts.items() if v["exceeded"]} == {"queue_operations", "d1_rows_written"}
    assert "helix_calls" not in verdicts  # Twitch's limit is a rate, not a Cloudflare quota


def test_usage_adds_and_scales() -> None:
    assert Usage(1, 2, 3, 4, 5) + Usage(1, 1, 1, 1, 1) == Usage(2, 3, 4, 5, 6)
    assert Usage(1, 2, 3, 4, 5).times(2) == Usage(2, 4, 6, 8, 10)


@pytest.mark.parametrize(("sql", "kind"), [
    ("INSERT INTO clips (id) SELECT 1", "insert clips"),
    ("  update jobs SET x = 1", "update jobs"),
    ("SELECT a FROM streamers AS s JOIN jobs", "select streamers"),
    ("DELETE FROM clip_views WHERE 1", "delete clip_views"),
    ("INSERT OR IGNORE INTO runs VALUES (1)", "insert runs"),
])
def test_statement_kinds(sql: str, kind: str) -> None:
    assert kind_of(sql) == kind


def test_the_schema_splits_into_whole_statements() -> None:
    statements = schema_statements()
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS clips") for s in statements)
    assert all(s.rstrip().endswith(";") for s in statements)


@needs_node
async def test_a_crawl_on_miniflare_d1_is_metered_and_changed_only_writes_fewer_rows() -> None:
    settings = Settings()
    changed = await measure(settings, streamers=3, crawls=1, views_settle_s=1800)
    with rewrite_everything(True):
        rewritten = await measure(settings, streamers=3, crawls=1, views_settle_s=1800)
    assert changed.first.d1_rows_written > 0 and changed.first.d1_rows_read > 0  # D1's own meta, not zero-filled
    assert changed.first == rewritten.first  # nothing stored yet: the two upserts write the same
    assert changed.steady[0].d1_rows_written < rewritten.steady[0].d1_rows_written
    assert changed.steady[0].queue_operations == 3 * (changed.steady[0].worker_requests - 1)  # one message each
