"""The local schedule's cron: the expression in wrangler.producer.toml, ticked as Cloudflare does (UTC)."""

from __future__ import annotations

import calendar

import pytest

from local.cron import Cron, producer_crons
from shared.errors import ConfigError


def at(text: str) -> float:
    return float(
        calendar.timegm(
            tuple(int(x) for x in text.replace("T", "-").replace(":", "-").split("-")) + (0, 0, 0)
        )
    )


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 * * * *", "2026-12-02T15:10", "2026-12-02T16:00"),
        ("0 * * * *", "2026-12-02T15:00", "2026-12-02T16:00"),  # strictly after
        ("*/15 * * * *", "2026-12-02T15:10", "2026-12-02T15:15"),
        ("5,35 9-10 * * *", "2026-12-02T10:40", "2026-12-03T09:05"),
        ("30 2 * * 1", "2026-12-02T15:10", "2026-12-07T02:30"),  # the next Monday
        ("0 0 * * 7", "2026-12-02T15:10", "2026-12-06T00:00"),  # 7 is Sunday too
        ("0 0 29 2 *", "2026-12-02T15:10", "2028-02-29T00:00"),
        ("0 12 1 * 5", "2026-12-02T15:10", "2026-12-04T12:00"),  # day and weekday both set: either matches
    ],
)
def test_next_firing_time(expression: str, after: str, expected: str) -> None:
    assert Cron.parse(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 * * *", "has 4 fields"),
        ("61 * * * *", "out of range for the minute"),
        ("x * * * *", "'x' is not a valid minute"),
        ("*/0 * * * *", "out of range"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_expressions_are_named(expression: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Cron.parse(expression).next_after(at("2026-12-02T15:10"))


def test_the_producer_cron_is_read_from_its_wrangler_file() -> None:
    crons = producer_crons()
    assert crons == ["0 * * * *"] and Cron.parse(crons[0])
