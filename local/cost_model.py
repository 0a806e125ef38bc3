"""What a crawl costs on Cloudflare, projected over a day and a month, against the plans' quotas."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

DAYS_PER_MONTH = 30
QUEUE_OP_BYTES = 64 * 1024  # one Queues operation per 64 KB written, read or deleted


@dataclass(frozen=True)
class Usage:
    """Metered amounts of one period: a crawl, a day or a month."""

    worker_requests: float = 0
    queue_operations: float = 0
    d1_rows_read: float = 0
    d1_rows_written: float = 0
    helix_calls: float = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def times(self, factor: float) -> Usage:
        return Usage(*(getattr(self, f.name) * factor for f in fields(self)))


@dataclass(frozen=True)
class Quota:
    """A metered amount's Free daily quota and Paid monthly included amount (None: not limited)."""

    name: str
    free_daily: int | None
    paid_monthly: int | None


# reference/cloudflare.md (2026): Workers Free 100,000 requests/day, Paid "no limit"; Queues Free 10,000
# operations/day, Paid 1M/month included; D1 Free 5M rows read and 100k rows written a day, Paid 25B / 50M a
# month.
QUOTAS = (
    Quota("worker_requests", 100_000, None),
    Quota("queue_operations", 10_000, 1_000_000),
    Quota("d1_rows_read", 5_000_000, 25_000_000_000),
    Quota("d1_rows_written", 100_000, 50_000_000),
    Quota("helix_calls", None, None),
)


def queue_operations(messages: int, retries: int = 0, message_bytes: int = 1024) -> int:
    """Write, read and delete per delivered message (each per 64 KB started), plus a read per retry."""
    if messages < 0 or retries < 0 or message_bytes <= 0:
        raise ValueError(
            f"messages and retries must be >= 0 and size > 0, got {messages!r}, {retries!r}, "
            f"{message_bytes!r}"
        )
    return 3 * messages * math.ceil(message_bytes / QUEUE_OP_BYTES) + retries


def headroom(used: float, quota: int | None) -> float | None:
    """The unused share of a quota: 0.25 means a quarter left; negative means over it."""
    return None if quota is None else 1 - used / quota


@dataclass(frozen=True)
class Projection:
    """One crawl, the day and the month at `crawls_per_day`, each amount against both plans."""

    crawl: Usage
    crawls_per_day: float

    @property
    def day(self) -> Usage:
        return self.crawl.times(self.crawls_per_day)

    @property
    def month(self) -> Usage:
        return self.day.times(DAYS_PER_MONTH)

    def rows(self) -> list[dict[str, Any]]:
        """Per metered amount: crawl, day, month, and headroom on the Free day and the Paid month."""
        return [
            {
                "metric": q.name,
                "crawl": getattr(self.crawl, q.name),
                "day": getattr(self.day, q.name),
                "month": getattr(self.month, q.name),
                "free_daily": q.free_daily,
                "free_headroom": headroom(getattr(self.day, q.name), q.free_daily),
                "paid_monthly": q.paid_monthly,
                "paid_headroom": headroom(getattr(self.month, q.name), q.paid_monthly),
            }
            for q in QUOTAS
        ]

    def to_json(self) -> dict[str, Any]:
        return {"crawls_per_day": self.crawls_per_day, "crawl": asdict(self.crawl), "table": self.rows()}


def day_against_free(day: Usage) -> list[dict[str, Any]]:
    """One measured day against the Free quotas: used, quota, headroom, and whether it is exceeded."""
    out = []
    for q in QUOTAS:
        if q.free_daily is None:
            continue
        used = getattr(day, q.name)
        out.append(
            {
                "metric": q.name,
                "used": used,
                "quota": q.free_daily,
                "headroom": headroom(used, q.free_daily),
                "exceeded": used > q.free_daily,
            }
        )
    return out


def render(projection: Projection) -> str:
    """A fixed-width table for the terminal."""
    lines = [
        (
            f"{'metric':<17}{'crawl':>12}{'day':>14}{'month':>16}{'Free/day':>12}{'headroom':>10}"
            f"{'Paid/month':>16}{'headroom':>10}"
        )
    ]
    for row in projection.rows():
        lines.append(
            f"{row['metric']:<17}{row['crawl']:>12,.0f}{row['day']:>14,.0f}{row['month']:>16,.0f}"
            f"{_quota(row['free_daily']):>12}{_share(row['free_headroom']):>10}"
            f"{_quota(row['paid_monthly']):>16}{_share(row['paid_headroom']):>10}"
        )
    return "\n".join(lines)


def _quota(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
