"""Settings from environment variables / wrangler [vars], with production defaults."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

from shared.errors import ConfigError
from shared.schedule import Tiers
from shared.verification import CheckSchedule

CLIP_WRITES = ("changed-only", "rewrite-everything")  # the values of store.ClipWrites

PLAN_LIMITS = {
    # (external fetches, internal calls: D1 queries and queue sends) per invocation.
    # Free: 50 external; D1 is budgeted at 50 too, the conservative reading of the docs.
    "free": (50, 50),
    "paid": (10_000, 1_000),
}


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field `x` is read from `CLIPCRAWLER_X` unless listed in ENV_NAMES."""

    twitch_api_url: str = "https://api.twitch.tv/helix"
    twitch_auth_url: str = "https://id.twitch.tv/oauth2"
    twitch_client_id: str = ""
    twitch_client_secret: str = ""
    plan: str = "free"
    external_limit: int = 0  # 0 = the plan's figure
    internal_limit: int = 0
    lookback_hours: int = 24  # every crawl reaches at least this far back, to refresh view counts
    overlap_minutes: int = 60  # reach back before the watermark, for late-arriving clips
    backfill_hours: int = 24  # how far back a streamer's first crawl goes
    max_window_hours: int = 24  # longer ranges are split into windows of at most this
    backfill_window_days: int = 120  # a backfill's windows grow up to this where a channel was quiet...
    backfill_window_clips: int = 700  # ...sized to hold this many: a split (over ~1,000) wastes 10 calls
    page_cap: int = 12  # pages per window: Helix stops near 1,000 results anyway
    split_at_pages: int = 10  # a window still going after this many full pages (the ~1,000 cap) is split
    min_split_minutes: int = (
        60  # a window whose walk reaches the page cap is split down to this, then accepted
    )
    cursor_max_age_seconds: int = 30  # resume a page walk older than this from its first page
    lease_seconds: int = 960  # a consumer's wall-time limit is 15 min; reclaim after that
    sweep_after_minutes: int = 180  # an unfinished job untouched this long lost its message: send another
    max_retries: int = 5  # must match the consumer's max_retries in wrangler.consumer.toml
    retry_delay_seconds: int = 60
    http_timeout_seconds: float = 10.0
    http_attempts: int = 3  # in-invocation tries of one Helix call on timeouts and 5xx
    http_backoff_seconds: float = 0.5
    # Every stored view count is the one the latest crawl read: a clip site sorts and ranks by it. Opt-in
    # saving:
    # a step > 0 rewrites a count only once it moved by that share of itself (at least one view)...
    view_count_step: float = 0.0
    view_count_max_age_hours: int = 0  # ...or once it was stored this long ago (0: at once, i.e. exact)
    # How stored clips are written (store.ClipWrites): "changed-only", or "rewrite-everything", which only the
    # benchmarks use to measure what changed-only saves.
    clip_writes: str = "changed-only"
    tier_hours: str = "1,3,12"  # adaptive schedule: tier i is crawled every this many hours...
    tier_active_within_hours: str = "2,48"  # ...and activity (a clip, or live) this recent earns tier i
    fanout_slice: int = 1_000  # streamers one invocation enqueues; the rest are handed on in a message
    # Queue delays are whole seconds, so a spread run's messages arrive in clumps of a second's points, and a
    # clump or a paced call can land past the edge of Twitch's window: 3% free is almost two seconds' worth.
    ratelimit_share: float = 0.97  # a big run's messages are spread to use this share of Twitch's points...
    ratelimit_assumed_points: int = 800  # ...per minute, this many until a Ratelimit-Limit header says
    ratelimit_low_water: float = 0.2  # below this share of the bucket left, space requests out
    max_pace_seconds: float = 20.0  # a longer wait is not slept through: the job is requeued instead
    # Verification of clips that left the lookback (consumer/verify.py), after a streamer's crawl completes,
    # with
    # at most these shares of the invocation's external (Helix) and internal (D1) subrequests: checks at these
    # days after creation, then every last-value days; a check may be made this long early, to fill a call
    # that goes out anyway.
    verify_schedule_days: str = "1,7,30"
    verify_external_share: float = 0.2
    verify_internal_share: float = 0.1
    verify_early_hours: float = 6.0
    games_retry_days: int = 30  # a game id Get Games did not know is asked again after this long
    webhook_url: str = ""  # Slack-compatible incoming webhook for run completion; a secret
    public_url: str = ""  # where the producer's dashboard is reachable, for links in notifications

    ENV_NAMES = {
        "twitch_api_url": "TWITCH_API_URL",
        "twitch_auth_url": "TWITCH_AUTH_URL",
        "twitch_client_id": "TWITCH_CLIENT_ID",
        "twitch_client_secret": "TWITCH_CLIENT_SECRET",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, Any], **overrides: Any) -> Settings:
        """Read settings from a mapping of strings (os.environ, or a Worker's env vars)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = cls.ENV_NAMES.get(f.name, "CLIPCRAWLER_" + f.name.upper())
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _cast(name, str(raw), type(f.default))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validated()

    def validated(self) -> Settings:
        if self.plan not in PLAN_LIMITS:
            raise ConfigError(
                f"CLIPCRAWLER_PLAN has value {self.plan!r}; expected one of {sorted(PLAN_LIMITS)}"
            )
        for name in (
            "lookback_hours",
            "max_window_hours",
            "page_cap",
            "split_at_pages",
            "lease_seconds",
            "sweep_after_minutes",
            "fanout_slice",
            "http_attempts",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} has value {getattr(self, name)!r}; it must be at least 1")
        for name in ("backfill_window_days", "backfill_window_clips"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} has value {getattr(self, name)!r}; it must be at least 1")
        for name in (
            "overlap_minutes",
            "backfill_hours",
            "external_limit",
            "internal_limit",
            "max_retries",
            "view_count_step",
            "view_count_max_age_hours",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} has value {getattr(self, name)!r}; it must not be negative")
        _ = self.tiers  # parsed here so a bad value fails at start, not mid-crawl
        _ = self.check_schedule
        for name in ("verify_external_share", "verify_internal_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} has value {getattr(self, name)!r}; it must be a share in [0, 1]")
        if not 0 <= self.verify_early_hours < math.inf or self.games_retry_days < 1:
            raise ConfigError(
                f"verify_early_hours ({self.verify_early_hours!r}) must be finite and not negative, "
                f"games_retry_days ({self.games_retry_days!r}) at least 1"
            )
        if not math.isfinite(self.view_count_step):
            raise ConfigError(
                f"view_count_step has value {self.view_count_step!r}; it must be a finite share"
            )
        if self.clip_writes not in CLIP_WRITES:
            raise ConfigError(
                f"clip_writes has value {self.clip_writes!r}; expected one of {sorted(CLIP_WRITES)}"
            )
        if not 0 < self.ratelimit_share <= 1:
            raise ConfigError(f"ratelimit_share has value {self.ratelimit_share!r}; it must be in (0, 1]")
        for name in ("webhook_url", "public_url"):
            value = getattr(self, name)
            if value and not value.startswith(("https://", "http://")):
                # The webhook URL is a secret: name the setting, never echo its value.
                shown = "***" if name == "webhook_url" else repr(value)
                raise ConfigError(f"CLIPCRAWLER_{name.upper()} has value {shown}; expected an http(s) URL")
        return self

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes).validated()

    # Parsed once per Settings (frozen, so they cannot go stale): every invocation reads them.
    @cached_property
    def tiers(self) -> Tiers:
        return Tiers.parse(self.tier_hours, self.tier_active_within_hours)

    @cached_property
    def check_schedule(self) -> CheckSchedule:
        return CheckSchedule.parse(self.verify_schedule_days, self.lookback_hours * 3600)

    @property
    def limits(self) -> tuple[int, int]:
        """(external, internal) subrequests allowed per invocation."""
        external, internal = PLAN_LIMITS[self.plan]
        return (self.external_limit or external, self.internal_limit or internal)

    def require_credentials(self) -> None:
        missing = [n for n in ("TWITCH_CLIENT_ID", "TWITCH_CLIENT_SECRET") if not getattr(self, n.lower())]
        if missing:
            raise ConfigError(f"missing Twitch credentials: set {' and '.join(missing)}")

    def __repr__(self) -> str:
        # The secret must never reach a log line or a traceback.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("twitch_client_secret", "webhook_url"):
            if shown[secret]:
                shown[secret] = "***"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def _cast(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return kind(raw.strip()) if kind is not str else raw
    except ValueError as exc:
        raise ConfigError(f"{name} has value {raw!r}; not a valid {kind.__name__}") from exc
