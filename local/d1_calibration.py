"""Rows D1 would read and write, for a crawl run on SQLite: per statement kind, as Miniflare's D1 metered
them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from local.d1_meter import Meter, kind_of
from shared.ports import Database, Result, Statement

CLIP_UPSERT = "insert clips"


@dataclass
class Calibration:
    """D1's rows read per statement and rows written per changed row, by statement kind.

    The clip upsert's changes are of two kinds D1 meters differently (a new clip also writes its two index
    entries; a rewrite of mutable fields touches no index), and their mix differs between a backfill and a
    steady crawl, so its rows written are charged per new clip and per rewritten clip.
    """

    read_per_statement: dict[str, float] = field(default_factory=dict)
    written_per_change: dict[str, float] = field(default_factory=dict)
    written_per_new_clip: float | None = None
    written_per_rewritten_clip: float | None = None

    @classmethod
    def from_meter(cls, meter: Meter, clip_crawls: Sequence[tuple[int, int, int]] = ()) -> Calibration:
        """From D1's meter, and per crawl (clip rows written, clips new, clips rewritten) for the upsert."""
        out = cls()
        for kind, (statements, read, written, changes) in meter.by_kind.items():
            out.read_per_statement[kind] = read / statements if statements else 0.0
            out.written_per_change[kind] = written / changes if changes else 0.0
        out.written_per_new_clip, out.written_per_rewritten_clip = _two_rates(clip_crawls)
        return out

    def clip_rows_written(self, new: int, rewritten: int) -> float | None:
        if self.written_per_new_clip is None or self.written_per_rewritten_clip is None:
            return None
        return new * self.written_per_new_clip + rewritten * self.written_per_rewritten_clip

    def estimate(self, kind: str, statements: int, changes: int) -> tuple[float, float]:
        # A kind never seen on Miniflare is charged a row read per statement and a row per change (+1 index).
        return (
            statements * self.read_per_statement.get(kind, 1.0),
            changes * self.written_per_change.get(kind, 2.0),
        )

    def charge(self, tally: dict[str, list[int]], new_clips: int) -> dict[str, tuple[float, float]]:
        """D1 rows (read, written) by kind for a CountingDatabase's tally, in which `new_clips` clips were
        new.
        """
        out = {}
        for kind, (statements, changes) in tally.items():
            read, written = self.estimate(kind, statements, changes)
            if kind == CLIP_UPSERT:
                written = self.clip_rows_written(new_clips, changes - new_clips) or written
            out[kind] = (read, written)
        return out


def _two_rates(crawls: Sequence[tuple[int, int, int]]) -> tuple[float | None, float | None]:
    """Least squares for rows = a * new + b * rewritten over the crawls; None when they cannot tell
    a from b.
    """
    snn = sum(n * n for _, n, _ in crawls)
    srr = sum(r * r for _, _, r in crawls)
    snr = sum(n * r for _, n, r in crawls)
    syn = sum(y * n for y, n, _ in crawls)
    syr = sum(y * r for y, _, r in crawls)
    det = snn * srr - snr * snr
    if not det:
        return None, None
    return (syn * srr - syr * snr) / det, (syr * snn - syn * snr) / det


class CountingDatabase:
    """A Database that tallies statements and changed rows by kind, for metering with a Calibration."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.tally: dict[str, list[int]] = {}  # kind -> [statements, changes]

    async def all(self, sql: str, *params: Any) -> list[Any]:
        return (await self.run(sql, *params)).rows

    async def first(self, sql: str, *params: Any) -> Any:
        rows = (await self.run(sql, *params)).rows
        return rows[0] if rows else None

    async def run(self, sql: str, *params: Any) -> Result:
        return (await self.batch([Statement(sql, tuple(params))]))[0]

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        results = await self.inner.batch(statements)
        for statement, result in zip(statements, results, strict=True):
            tally = self.tally.setdefault(kind_of(statement.sql), [0, 0])
            tally[0] += 1
            tally[1] += result.changes
        return results

    def take(self) -> dict[str, list[int]]:
        tally, self.tally = self.tally, {}
        return tally
