"""A failed or killed export: no half-written file where a reader looks, and the watermark does not move."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from local.export import (
    TABLES,
    Destination,
    ExportError,
    ExportOptions,
    ExportState,
    SqliteSource,
    run_export,
)
from local.export.sources import Source
from local.export.state import TableState
from tests.test_export_support import (
    HOUR_S,
    FileCrawl,
    all_files,
    database_rows,
    dataset,
    file_crawl,
    latest_rows,
    visible_files,
)


class Crash(Exception):
    """What the fault injected here raises."""


class FaultyLocalFs(pafs.FileSystemHandler):
    """The local filesystem through pyarrow's filesystem interface, failing where a test says."""

    def __init__(self, *, fail_write: tuple[int, int] | None = None, fail_move: int | None = None) -> None:
        self.inner = pafs.LocalFileSystem()
        self.fail_write = fail_write  # (nth file opened, nth write into it)
        self.fail_move = fail_move
        self.opened = 0
        self.moves = 0

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        self.opened += 1
        fails_at = self.fail_write[1] if self.fail_write and self.fail_write[0] == self.opened else None
        return pa.PythonFile(_FailingFile(open(path, "wb"), fails_at), mode="w")

    def move(self, src: str, dest: str) -> None:
        self.moves += 1
        if self.moves == self.fail_move:
            raise Crash(f"rename {src} failed")
        self.inner.move(src, dest)

    def get_type_name(self) -> str:
        return "faulty-local"

    def normalize_path(self, path: str) -> str:
        return self.inner.normalize_path(path)

    def equals(self, other: Any) -> bool:
        return self is other

    def get_file_info(self, paths: Sequence[str]) -> list[pafs.FileInfo]:
        return self.inner.get_file_info(list(paths))

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.inner.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.inner.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.inner.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.inner.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        self.inner.delete_file(path)

    def copy_file(self, src: str, dest: str) -> None:
        self.inner.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        return self.inner.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self.inner.open_input_file(path)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        raise NotImplementedError


class _FailingFile(io.RawIOBase):
    def __init__(self, file: Any, fails_at: int | None) -> None:
        self.file = file
        self.fails_at = fails_at
        self.writes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.writes += 1
        if self.writes == self.fails_at:
            raise Crash("no space left on device")
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()
        super().close()


class FaultySource:
    """Answers like the real source, then fails on query number `fails_at`."""

    def __init__(self, inner: Source, fails_at: int) -> None:
        self.inner, self.fails_at, self.queries = inner, fails_at, 0
        self.name, self.description = inner.name, inner.description

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.queries += 1
        if self.queries == self.fails_at:
            raise Crash("the database went away")
        return self.inner.query(sql, params)

    def close(self) -> None:
        self.inner.close()


class FaultyState(ExportState):
    def commit(self, destination: str, states: Sequence[TableState], expected: dict[str, str]) -> None:
        raise Crash("database is locked")


FAULTS: dict[str, Callable[[], tuple[pafs.FileSystemHandler | None, int | None, bool]]] = {
    # (filesystem handler, source query that fails, whether the state commit fails)
    "write fails mid-file": lambda: (FaultyLocalFs(fail_write=(2, 3)), None, False),
    "source fails mid-table": lambda: (None, 4, False),
    "rename fails after the first file": lambda: (FaultyLocalFs(fail_move=2), None, False),
    "state commit fails after the renames": lambda: (None, None, True),
}


@pytest.fixture
async def crawl(tmp_path: Path) -> AsyncIterator[FileCrawl]:
    async with file_crawl(tmp_path / "crawl.sqlite") as crawl:
        yield crawl


def export_state(crawl: FileCrawl) -> list[tuple[Any, ...]]:
    return crawl.sql("SELECT * FROM export_state ORDER BY destination, table_name")


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failed_export_leaves_nothing_visible_and_keeps_the_watermark(
    crawl: FileCrawl, tmp_path: Path, fault: str
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    await crawl.crawl(after_s=HOUR_S)
    files, state, tail = all_files(out), export_state(crawl), crawl.sql("SELECT * FROM export_tail")
    handler, fail_query, fail_commit = FAULTS[fault]()
    filesystem = pafs.PyFileSystem(handler) if handler else pafs.LocalFileSystem()
    source: Source = SqliteSource(crawl.path)
    if fail_query:
        source = FaultySource(source, fail_query)
    store = (FaultyState if fail_commit else ExportState)(crawl.path)

    with pytest.raises(Crash):
        run_export(
            source,
            Destination(filesystem, out.as_posix(), out.as_uri()),
            store,
            crawl.clock,
            ExportOptions(batch_rows=5),
        )
    source.close()
    store.close()

    assert all_files(out) == files  # not even a temporary file is left
    assert export_state(crawl) == state and crawl.sql("SELECT * FROM export_tail") == tail
    report = crawl.export(out)  # the next export does what the failed one should have
    assert report.tables[0].rows > 0 and report.tables[0].mode == "incremental"
    for spec in TABLES:
        assert latest_rows(out, spec) == database_rows(crawl.path, spec), spec.name


async def test_files_of_a_killed_export_are_invisible_and_cleared_later(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    # What `kill -9` in the middle of a write leaves: a temporary name holding half a file. The one from
    # two days ago is abandoned; the one from a minute ago may belong to an export still running.
    partition = next(out.joinpath("clips").iterdir())
    abandoned = partition / ".part-20260919T141320Z-0badf00d-00001.parquet.tmp"
    recent = partition / ".part-20260921T141220Z-0badf00d-00001.parquet.tmp"
    for leftover in (abandoned, recent):
        leftover.write_bytes(b"PAR1 half a row group")
    expected = database_rows(crawl.path, TABLES[0])

    assert not {abandoned.name, recent.name} & {p.rsplit("/", 1)[-1] for p in visible_files(out)}
    assert dataset(out, "clips").to_table().num_rows == len(expected)
    glob = f"SELECT count(*) FROM read_parquet('{out}/clips/**/*.parquet')"
    assert duckdb.sql(glob).fetchall() == [(len(expected),)]
    crawl.export(out)
    assert not abandoned.exists() and recent.exists()


class ConcurrentSource(FaultySource):
    """Runs a whole other export to the same destination in the middle of this one."""

    def __init__(self, inner: Source, at: int, other: Callable[[], object]) -> None:
        super().__init__(inner, fails_at=-1)
        self.at, self.other = at, other

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.queries + 1 == self.at:
            self.other()
        return super().query(sql, params)


async def test_of_two_overlapping_exports_the_later_to_finish_fails_and_removes_its_files(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    await crawl.crawl(after_s=HOUR_S)
    before = visible_files(out)
    finished_first: list[set[str]] = []
    source = ConcurrentSource(
        SqliteSource(crawl.path),
        3,
        lambda: finished_first.append({f for t in crawl.export(out).tables for f in t.files}),
    )
    store = ExportState(crawl.path)

    with pytest.raises(ExportError, match="another export to .* finished while this one ran"):
        run_export(
            source,
            Destination(pafs.LocalFileSystem(), out.as_posix(), out.as_uri()),
            store,
            crawl.clock,
            ExportOptions(batch_rows=5),
        )
    source.close()
    store.close()

    assert finished_first[0] and {str(out / f) for f in visible_files(out) - before} == finished_first[0]
    assert all(".tmp" not in f for f in all_files(out))
    for spec in TABLES:
        assert latest_rows(out, spec) == database_rows(crawl.path, spec), spec.name


async def test_tail_rows_of_a_killed_export_are_forgotten(crawl: FileCrawl, tmp_path: Path) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    crawl.sql(
        "INSERT INTO export_tail SELECT destination, table_name, '20260921T150000Z-0badf00d', row_key, "
        "'x' FROM export_tail"
    )

    crawl.export(out)

    tail = set(crawl.sql("SELECT DISTINCT table_name, generation FROM export_tail"))
    assert tail and tail <= set(crawl.sql("SELECT table_name, generation FROM export_state"))
