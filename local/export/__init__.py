"""Parquet export of clips, runs, jobs and games for analysis: incremental, to a directory or an S3/R2
bucket."""

from __future__ import annotations

from local.export.destinations import Destination, open_destination
from local.export.errors import ExportError
from local.export.exporter import ExportOptions, ExportReport, TableReport, run_export
from local.export.schemas import CLIPS, GAMES, JOBS, RUNS, TABLES, TableSpec
from local.export.sources import Source, SqliteSource
from local.export.state import ExportState

__all__ = [
    "CLIPS",
    "GAMES",
    "JOBS",
    "RUNS",
    "TABLES",
    "Destination",
    "ExportError",
    "ExportOptions",
    "ExportReport",
    "ExportState",
    "Source",
    "SqliteSource",
    "TableReport",
    "TableSpec",
    "open_destination",
    "run_export",
]
