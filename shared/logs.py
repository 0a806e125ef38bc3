"""Structured log lines: one JSON object per event, with secrets masked before anything is written."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from shared import redaction
from shared.redaction import MASK, MIN_SECRET_LENGTH, Redactor

__all__ = [
    "BUG_EVENT",
    "MASK",
    "MIN_SECRET_LENGTH",
    "EventLog",
    "RedactingFilter",
    "Redactor",
    "SecretGuard",
    "configure",
    "event_fields",
    "guard",
    "log_bug",
]

EVENTS_LOGGER = "clipcrawler.events"


class EventLog:
    """Writes one JSON line per event to the `clipcrawler.events` logger, so logs filter by run."""

    def __init__(self, redactor: Redactor | None = None, logger: logging.Logger | None = None) -> None:
        self.redactor = redactor or Redactor()
        self.logger = logger or logging.getLogger(EVENTS_LOGGER)

    def emit(self, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
        """Log `event` with its fields; None-valued fields are left out."""
        if not self.logger.isEnabledFor(level):
            return
        line = {"event": event, "level": logging.getLevelName(level).lower()}
        line.update({k: self.redactor.value(k, v) for k, v in fields.items() if v is not None})
        self.logger.log(level, json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str))


def event_fields(line: str) -> dict[str, Any]:
    """The fields of a line written by `EventLog.emit`."""
    parsed = json.loads(line)
    if not isinstance(parsed, dict) or "event" not in parsed:
        raise ValueError(f"not an event line: {line[:200]!r}")
    return parsed


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in every record, whichever module logged it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        record.msg, record.args = self.redactor.text(message), ()
        return True


class SecretGuard(logging.Filter):
    """A logger filter masking registered secrets before any handler (or test capture) sees the record.

    For loggers of libraries that log what they send, e.g. httpx logs every request URL at INFO, and
    a webhook URL is itself a secret.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._redactor = Redactor()

    def add(self, *secrets: str) -> None:
        fresh = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH} - self._secrets
        if fresh:
            self._secrets |= fresh
            self._redactor = Redactor(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._redactor.text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_GUARD = SecretGuard()


def guard(logger_name: str, *secrets: str) -> None:
    """Mask `secrets` in everything `logger_name` logs from now on (process-wide, idempotent)."""
    _GUARD.add(*secrets)
    logger = logging.getLogger(logger_name)
    if _GUARD not in logger.filters:
        logger.addFilter(_GUARD)


def configure(redactor: Redactor, *, level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """Send clipcrawler's records to `stream` (stderr), one message per line, through a redacting filter.

    Without this, Python prints only warnings (logging's last-resort handler), and event lines at
    INFO would never reach Workers Logs or a terminal.
    """
    redaction.install(redactor)  # the same secrets are masked in stored and returned error text
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("clipcrawler")
    for old in [h for h in logger.handlers if getattr(h, "_clipcrawler", False)]:
        logger.removeHandler(old)
    handler._clipcrawler = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


BUG_EVENT = "bug"


def log_bug(where: str, exc: BaseException, **fields: Any) -> None:
    """Log an exception no port raises on purpose as the `bug` event (its type, its text scrubbed), at ERROR.

    So a bug is told apart from "the database failed", while the caller still keeps the message.
    """
    events = EventLog(redaction.process_redactor())
    events.emit(
        BUG_EVENT,
        level=logging.ERROR,
        where=where,
        error_type=type(exc).__name__,
        error=redaction.scrub(str(exc)),
        **fields,
    )
