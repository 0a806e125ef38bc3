"""Clips that Twitch deletes over time: from its instant on, a deleted clip is absent from every answer."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

DAY_S = 86_400.0


@dataclass(frozen=True)
class ClipDeletions:
    """Which clips the emulated Twitch deletes, and when, as pure functions of the clip id.

    A share `rate` of all clips is deleted, each at an instant drawn uniformly from `after_s` after its
    creation, so any run with the same seed deletes the same clips at the same simulated instants, in
    whatever order the requests come. `schedule` pins single clips: id -> (deleted at, back at or None).
    """

    rate: float = 0.0
    after_s: tuple[float, float] = (3600.0, 60 * DAY_S)
    seed: int = 0
    schedule: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"ClipDeletions.rate is {self.rate!r}; a rate must be between 0 and 1")
        low, high = self.after_s
        if not 0.0 <= low <= high or not math.isfinite(high):
            raise ValueError(f"ClipDeletions.after_s is {self.after_s!r}; need 0 <= low <= high")
        for clip_id, (gone, back) in self.schedule.items():
            if back is not None and back <= gone:
                raise ValueError(
                    f"ClipDeletions.schedule[{clip_id!r}] comes back at {back!r}, "
                    f"not after it is deleted at {gone!r}"
                )

    @property
    def active(self) -> bool:
        return self.rate > 0.0 or bool(self.schedule)

    def interval(self, clip_id: str, created_at: float) -> tuple[float, float | None] | None:
        """When this clip is deleted and when it comes back (None: never); None if it is never deleted."""
        pinned = self.schedule.get(clip_id)
        if pinned is not None:
            return pinned
        if self.rate == 0.0 or _unit(self.seed, "chosen", clip_id) >= self.rate:
            return None
        low, high = self.after_s
        return created_at + low + _unit(self.seed, "when", clip_id) * (high - low), None


def deleted_during(span: tuple[float, float | None] | None, now: float) -> bool:
    """True if `now` falls within a deletion interval (from `interval`)."""
    if span is None:
        return False
    gone, back = span
    return gone <= now and (back is None or now < back)


def _unit(seed: int, kind: str, key: str) -> float:
    """A number in [0, 1) fixed by (seed, kind, key)."""
    digest = hashlib.sha256(f"{seed}:deletion:{kind}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
