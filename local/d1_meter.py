"""Miniflare's D1 behind the Database port, so rows read and written are D1's own meter, not a guess."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.schema_upgrade import statements
from shared.errors import DatabaseError
from shared.ports import BatchShortcuts, Result, Statement

ROOT = Path(__file__).resolve().parent.parent
BRIDGE = Path(__file__).resolve().parent / "d1_bridge.mjs"
# schema.sql is the one DDL; tests/test_wrangler.py keeps migrations/ identical to it, and reading it directly
# keeps this meter working while a schema change is still on its way into a new migration.
SCHEMA = ROOT / "schema.sql"
_LINE_LIMIT = 1 << 26  # one answer per line, and a page of clips read back can be large


class D1BridgeError(DatabaseError):
    """Miniflare's D1 refused a batch, or the bridge process is gone."""


@dataclass
class Meter:
    """D1's rows_read / rows_written, in total and by statement kind (verb and table)."""

    rows_read: int = 0
    rows_written: int = 0
    round_trips: int = 0
    by_kind: dict[str, list[int]] = field(
        default_factory=dict
    )  # kind -> [statements, read, written, changes]

    def add(self, statement: Statement, result: Result) -> None:
        self.rows_read += result.rows_read
        self.rows_written += result.rows_written
        tally = self.by_kind.setdefault(kind_of(statement.sql), [0, 0, 0, 0])
        tally[0] += 1
        tally[1] += result.rows_read
        tally[2] += result.rows_written
        tally[3] += result.changes

    def snapshot(self) -> tuple[int, int]:
        return self.rows_read, self.rows_written


_KIND = re.compile(
    r"^\s*(?:WITH\b.*?\)\s*)?(INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|SELECT|REPLACE\s+INTO)"
    r"\s+(\w+)?",
    re.IGNORECASE | re.DOTALL,
)
_FROM = re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE)


def kind_of(sql: str) -> str:
    """ "insert clips", "update jobs", "select streamers": a label for grouping the meter."""
    match = _KIND.match(sql)
    if match is None:
        return sql.split(None, 1)[0].lower() if sql.strip() else "empty"
    verb = match.group(1).split()[0].lower()
    table = match.group(2) if verb != "select" else None
    if table is None:
        found = _FROM.search(sql)
        table = found.group(1) if found else "-"
    return f"{verb} {table.lower()}"


def schema_statements(paths: Sequence[Path] = (SCHEMA,)) -> list[str]:
    """Every statement of the DDL, in order, split where SQLite says a statement ends."""
    try:
        return [statement for path in paths for statement in statements(path)]
    except ValueError as exc:
        raise D1BridgeError(str(exc)) from exc


def node_available() -> bool:
    return shutil.which("node") is not None and (ROOT / "node_modules" / "miniflare").is_dir()


class MiniflareD1(BatchShortcuts):
    """One Node process holding an in-memory Miniflare D1; each `batch` is one `db.batch()` there."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.meter = Meter()
        self.calls = 0

    @classmethod
    async def open(cls, *, schema: bool = True) -> MiniflareD1:
        if not node_available():
            raise D1BridgeError(
                f"node and {ROOT / 'node_modules' / 'miniflare'} are needed; run `npm ci` in {ROOT}"
            )
        process = await asyncio.create_subprocess_exec(
            "node",
            str(BRIDGE),
            cwd=str(ROOT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=_LINE_LIMIT,
        )
        db = cls(process)
        ready = await db._read()
        if not ready.get("ready"):
            await db.close()
            raise D1BridgeError(f"the D1 bridge did not start: {ready!r}")
        db._reader = asyncio.create_task(db._read_answers())
        if schema:
            # The schema is not metered: they are a deployment step, not the crawler's traffic.
            for sql in schema_statements():
                await db._request([Statement(sql, ())])
        return db

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._process.returncode is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """One round trip, one transaction; every result carries D1's own rows_read / rows_written."""
        results = await self._request(statements)
        self.calls += 1
        self.meter.round_trips += 1
        for statement, result in zip(statements, results, strict=True):
            self.meter.add(statement, result)
        return results

    async def observe(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """A read by whoever measures the crawl: answered by the same D1, left out of its meter."""
        return (await self._request([Statement(sql, tuple(params))]))[0].rows

    async def _request(self, statements: Sequence[Statement]) -> list[Result]:
        # Pipelined: many invocations wait on D1 at once, as they do on Cloudflare; answers come back by id.
        self._next_id += 1
        request_id = self._next_id
        answer_at: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer_at
        request = {
            "id": request_id,
            "statements": [{"sql": s.sql, "params": list(s.params)} for s in statements],
        }
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        await self._process.stdin.drain()
        answer = await answer_at
        if "error" in answer:
            raise D1BridgeError(f"D1_ERROR: {answer['error']}")
        return [_result(r) for r in answer["result"]]

    async def _read_answers(self) -> None:
        try:
            while True:
                answer = await self._read()
                waiter = self._waiting.pop(answer.get("id"), None)  # type: ignore[arg-type]
                if waiter is not None and not waiter.done():
                    waiter.set_result(answer)
        except D1BridgeError as exc:
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(exc)
            self._waiting.clear()

    async def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = await self._process.stdout.readline()
        if not line:
            raise D1BridgeError(f"the D1 bridge exited (code {self._process.returncode!r})")
        answer: dict[str, Any] = json.loads(line)
        return answer


def _result(raw: dict[str, Any]) -> Result:
    meta = raw.get("meta") or {}
    return Result(
        rows=list(raw.get("results") or []),
        changes=int(meta.get("changes") or 0),
        last_row_id=meta.get("last_row_id"),
        rows_read=int(meta.get("rows_read") or 0),
        rows_written=int(meta.get("rows_written") or 0),
    )
