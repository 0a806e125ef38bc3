"""Streams a table out of a Source in pages (keyset pagination): memory stays flat however big the table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from local.export.schemas import TableSpec
from local.export.sources import Source

DEFAULT_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class Page:
    """One page of rows: each row's partition value and its values in `spec.columns` order."""

    partitions: list[Any]
    rows: list[tuple[Any, ...]]


def high_water_mark(source: Source, spec: TableSpec) -> str | None:
    """The newest change marker in the table (read before paging, so later changes are at or after it)."""
    if spec.marker is None:
        return None
    rows = source.query(f"SELECT max(t.{spec.marker}) FROM {spec.from_sql}")
    return rows[0][0] if rows else None


def read_pages(
    source: Source, spec: TableSpec, *, changed_since: str | None, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[Page]:
    """Rows whose marker is at or after `changed_since`, or unset (unfinished); every row if it is None."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows!r}")
    width = len(spec.key)
    select = ", ".join([e for e, _ in spec.key] + [spec.partition_sql] + [f"t.{c}" for c in spec.columns])
    conditions: list[str] = []
    params: list[Any] = []
    if changed_since is not None and spec.marker is not None:
        conditions.append(f"(t.{spec.marker} IS NULL OR t.{spec.marker} >= ?)")
        params.append(changed_since)
    # Every integer parameter is cast: the D1 HTTP API passes parameters as strings.
    after = (
        f"({', '.join(e for e, _ in spec.key)}) > ({', '.join(_param(i) for _, i in spec.key)})"
        if width > 1
        else f"{spec.key[0][0]} > {_param(spec.key[0][1])}"
    )
    order = ", ".join(e for e, _ in spec.key)
    last: tuple[Any, ...] | None = None
    while True:
        where = conditions + ([after] if last is not None else [])
        sql = (
            f"SELECT {select} FROM {spec.from_sql}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {order} LIMIT CAST(? AS INTEGER)"
        )
        rows = source.query(sql, [*params, *(last or ()), batch_rows])
        if not rows:
            return
        last = rows[-1][:width]
        yield Page([r[width] for r in rows], [r[width + 1 :] for r in rows])
        if len(rows) < batch_rows:
            return


def _param(integer: bool) -> str:
    return "CAST(? AS INTEGER)" if integer else "?"
