"""The per-invocation subrequest budget, charged before every outbound call."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import BudgetExhausted

EXTERNAL = "external"  # fetch(): Helix and the token endpoint
INTERNAL = "internal"  # Cloudflare services: D1 queries and queue sends


@dataclass
class Budget:
    """Counts subrequests by bucket; `charge` refuses the call that would not fit."""

    external_limit: int
    internal_limit: int
    used: dict[str, int] = field(default_factory=lambda: {EXTERNAL: 0, INTERNAL: 0})
    calls: dict[str, int] = field(default_factory=lambda: {"helix": 0, "d1": 0, "queue": 0})

    def limit(self, bucket: str) -> int:
        return self.external_limit if bucket == EXTERNAL else self.internal_limit

    def left(self, bucket: str) -> int:
        return self.limit(bucket) - self.used[bucket]

    def can_afford(self, external: int = 0, internal: int = 0) -> bool:
        return self.left(EXTERNAL) >= external and self.left(INTERNAL) >= internal

    def charge(self, kind: str) -> None:
        """Charge one call of `kind` ('helix', 'd1' or 'queue'), or raise BudgetExhausted."""
        bucket = EXTERNAL if kind == "helix" else INTERNAL
        if self.left(bucket) < 1:
            raise BudgetExhausted(bucket, self.limit(bucket))
        self.used[bucket] += 1
        self.calls[kind] += 1

    @property
    def total(self) -> int:
        return self.used[EXTERNAL] + self.used[INTERNAL]
