"""Statements sent to D1 in one round trip (one transaction), whose results are read back by name.

`store` functions build a `Batch`, naming each statement whose result someone reads; the caller runs it
with `await batch.run(db)` and reads `results.rows("claimed")`, never `results[3]`, so adding a statement
to a batch cannot shift what another caller reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.ports import Database, Result, Row, Statement


@dataclass
class Batch:
    """Statements for one `Database.batch` call; the named ones can be read back from its results."""

    statements: list[Statement] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)

    def add(self, statement: Statement, name: str | None = None) -> Batch:
        """Append `statement`; with `name`, its result is readable as `results[name]`."""
        if name is not None:
            if name in self.names:
                raise ValueError(f"a batch already has a statement named {name!r}")
            self.names[name] = len(self.statements)
        self.statements.append(statement)
        return self

    def add_all(self, statements: Iterable[Statement]) -> Batch:
        """Append statements nobody reads the results of (writes whose effect is checked elsewhere)."""
        self.statements.extend(statements)
        return self

    def extend(self, other: Batch) -> Batch:
        """Append another batch's statements, keeping their names (which must not clash with ours)."""
        for name, index in other.names.items():
            if name in self.names:
                raise ValueError(f"both batches name a statement {name!r}")
            self.names[name] = len(self.statements) + index
        self.statements.extend(other.statements)
        return self

    def __len__(self) -> int:
        return len(self.statements)

    def __getitem__(self, name: str) -> Statement:
        """The statement named `name` (to look at what it binds)."""
        try:
            return self.statements[self.names[name]]
        except KeyError:
            raise KeyError(
                f"no statement named {name!r} in this batch (named: {sorted(self.names)})"
            ) from None

    async def run(self, db: Database) -> BatchResults:
        """Send the batch (one round trip, one transaction) and return its results, readable by name."""
        return BatchResults(dict(self.names), await db.batch(self.statements))


@dataclass(frozen=True)
class BatchResults:
    """What D1 answered for a batch, by statement name."""

    names: dict[str, int]
    results: Sequence[Result]

    def __getitem__(self, name: str) -> Result:
        try:
            return self.results[self.names[name]]
        except KeyError:
            raise KeyError(
                f"no statement named {name!r} in this batch (named: {sorted(self.names)})"
            ) from None

    def rows(self, name: str) -> list[Row]:
        return self[name].rows

    def first(self, name: str) -> Row | None:
        rows = self[name].rows
        return rows[0] if rows else None

    def changes(self, name: str) -> int:
        return self[name].changes


async def run_statement(db: Database, statement: Statement) -> Result:
    """Send one statement as a batch of one (one round trip, as a batch of several would be)."""
    return (await Batch().add(statement, "statement").run(db))["statement"]
