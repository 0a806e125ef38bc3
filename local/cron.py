"""The producer's cron, read from wrangler.producer.toml and ticked locally (UTC, as Cloudflare runs it)."""

from __future__ import annotations

import calendar
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError

PRODUCER_TOML = Path(__file__).resolve().parent.parent / "wrangler.producer.toml"
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
_MAX_MINUTES_AHEAD = 366 * 24 * 60 * 5  # a valid expression fires within a few years (29 February)


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression: numbers, `*`, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`."""

    expression: str
    allowed: tuple[frozenset[int], ...]
    any_day_of_month: bool
    any_day_of_week: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) != 5:
            raise ConfigError(
                f"cron {expression!r} has {len(parts)} fields; expected 5 (minute hour day month weekday)"
            )
        allowed = tuple(_field(part, *spec, expression) for part, spec in zip(parts, _FIELDS, strict=True))
        week = frozenset(d % 7 for d in allowed[4])  # 7 is Sunday too
        return cls(expression, (*allowed[:4], week), parts[2] == "*", parts[4] == "*")

    def next_after(self, when: float) -> float:
        """The first firing time strictly after `when` (epoch seconds), on a whole minute."""
        minute = int(when // 60) + 1
        for _ in range(_MAX_MINUTES_AHEAD):
            t = time.gmtime(minute * 60)
            if (
                t.tm_min in self.allowed[0]
                and t.tm_hour in self.allowed[1]
                and t.tm_mon in self.allowed[3]
                and self._day_matches(t)
            ):
                return float(calendar.timegm(t))
            minute += 1 if t.tm_hour in self.allowed[1] else 60 - t.tm_min
        raise ConfigError(f"cron {self.expression!r} never fires")

    def _day_matches(self, t: time.struct_time) -> bool:
        month_day = t.tm_mday in self.allowed[2]
        week_day = (t.tm_wday + 1) % 7 in self.allowed[4]  # cron counts from Sunday = 0
        if self.any_day_of_month or self.any_day_of_week:
            return month_day and week_day
        return month_day or week_day  # both restricted: either matches, as in every cron


def _field(text: str, name: str, low: int, high: int, expression: str) -> frozenset[int]:
    values: set[int] = set()
    top = 7 if name == "day of week" else high
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(x) for x in body.split("-", 1))
            else:
                start = end = int(body)
                if step_text:
                    end = high
        except ValueError:
            raise ConfigError(f"cron {expression!r}: {item!r} is not a valid {name}") from None
        if step < 1 or not low <= start <= end <= top:
            raise ConfigError(f"cron {expression!r}: {item!r} is out of range for the {name} ({low}-{top})")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def producer_crons(path: Path = PRODUCER_TOML) -> list[str]:
    """The `[triggers] crons` of the producer's wrangler file."""
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the producer's cron from {path}: {exc}") from exc
    crons = config.get("triggers", {}).get("crons", [])
    if not crons or not all(isinstance(c, str) for c in crons):
        raise ConfigError(f"{path} has no [triggers] crons to schedule")
    return list(crons)
