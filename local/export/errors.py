"""The export's one error: what went wrong, naming the table, column, file or setting at fault."""

from __future__ import annotations

from shared.errors import ClipCrawlerError


class ExportError(ClipCrawlerError):
    """The Parquet export cannot go on; nothing it wrote so far is visible and the watermark did not move."""
