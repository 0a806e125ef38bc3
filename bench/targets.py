"""The issue's targets, checked against the figures."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.config import PLAN_LIMITS

_FREE_EXTERNAL, _FREE_INTERNAL = PLAN_LIMITS["free"]


@dataclass(frozen=True)
class Target:
    scenario: str
    figure: str
    op: str  # ">=", "<=", "<", "=="
    threshold: float
    label: str

    def check(self, value: Any) -> bool | None:
        """True or False, or None when the figure was not measured."""
        if value is None:
            return None
        compare: Callable[[Any, Any], bool] = _OPS[self.op]
        return compare(value, self.threshold)


_OPS: Mapping[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

TARGETS = (
    Target("S1", "speedup", ">=", 100, "S1 at least 100x faster than the baseline"),
    Target("S1", "wall_over_floor", "<=", 2, "S1 within 2x its floor"),
    Target("S1", "subrequests_p95", "<=", 4, "S1 at most 4 subrequests per invocation at p95"),
    Target("S1", "d1_calls_per_page", "<=", 1, "S1 at most 1 D1 round trip per page"),
    Target("S2", "subrequests_p95", "<=", 4, "S2 at most 4 subrequests per invocation at p95"),
    Target("S2", "d1_calls_per_page", "<=", 1, "S2 at most 1 D1 round trip per page"),
    Target("S2", "rate_limit_share", ">=", 0.9, "S2 sustains at least 90% of the rate-limit budget"),
    Target("S2", "http_429_share", "<", 0.01, "S2 under 1% of Helix requests answered 429"),
    Target("S2", "lost", "==", 0, "S2 loses nothing"),
    Target(
        "S3",
        "external_max",
        "<=",
        _FREE_EXTERNAL,
        f"S3 at most {_FREE_EXTERNAL} external subrequests per invocation",
    ),
    Target(
        "S3",
        "internal_max",
        "<=",
        _FREE_INTERNAL,
        f"S3 at most {_FREE_INTERNAL} internal subrequests per invocation",
    ),
    Target("S3", "lost", "==", 0, "S3 loses nothing (DESIGN.md: a heavy streamer must still finish)"),
    Target("S1", "calls_over_needed", "<=", 1.10, "S1 at most 1.10 Helix calls per call needed"),
    Target("S2", "calls_over_needed", "<=", 1.10, "S2 at most 1.10 Helix calls per call needed"),
    Target(
        "S3",
        "calls_over_needed",
        "<=",
        1.30,
        "S3's first crawl (finding where the cap bites) at most 1.30 Helix calls per call needed",
    ),
    Target(
        "S3",
        "second_crawl_over_needed",
        "<=",
        1.10,
        "S3's second crawl at most 1.10 Helix calls per call needed",
    ),
    Target("S4", "calls_over_needed", "<=", 1.10, "S4 (traps) at most 1.10 Helix calls per call needed"),
    Target("S4", "lost", "==", 0, "S4 loses nothing to the traps"),
    Target("S4", "mints_over_revocations", "==", 1, "S4 mints one token per revocation, plus the first"),
)


def check_targets(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it was met (None: scenario not run)."""
    checked = []
    for target in TARGETS:
        figures = results.get(target.scenario)
        value = figures.get(target.figure) if figures is not None else None
        checked.append(
            {
                "scenario": target.scenario,
                "figure": target.figure,
                "target": f"{target.op} {target.threshold:g}",
                "threshold": target.threshold,
                "label": target.label,
                "value": value,
                "met": target.check(value),
            }
        )
    return checked
