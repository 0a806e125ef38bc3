"""The crawler's errors: each message names the offending value."""

from __future__ import annotations

from shared.redaction import scrub


class ClipCrawlerError(Exception):
    """Base of every error the crawler raises on purpose."""


class InvalidInput(ClipCrawlerError, ValueError):
    """Input from outside (a message, a payload, a request, a setting) is not acceptable."""


class ConfigError(InvalidInput):
    """A setting is missing or has an unusable value."""


class MalformedMessage(InvalidInput):
    """A queue message body cannot be decoded; retrying it cannot help."""


class DatabaseError(ClipCrawlerError):
    """The database (D1, or a local stand-in) refused a statement or could not be reached; every adapter
    raises this, so the core tells "the database failed" from a bug. A failed batch applied nothing."""


class QueueError(ClipCrawlerError):
    """The queue refused a send or could not be reached; nothing of that send was enqueued."""


class BudgetExhausted(ClipCrawlerError):
    """The next subrequest would exceed this invocation's budget."""

    def __init__(self, bucket: str, limit: int) -> None:
        super().__init__(f"subrequest budget exhausted: {bucket} limit {limit} reached")
        self.bucket = bucket
        self.limit = limit


class HelixError(ClipCrawlerError):
    """Twitch answered something the crawler cannot use."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        # Twitch's error text can repeat the request (client_secret=...); this text is stored in D1,
        # returned by the API and printed by the CLI, so it is scrubbed where it is made.
        super().__init__(scrub(message))
        self.status = status


class TransientHelixError(HelixError):
    """A timeout, connection failure or 5xx: worth retrying later."""


class RateLimited(HelixError):
    """Twitch answered 429; `reset_at` is when the bucket refills (epoch seconds)."""

    def __init__(self, reset_at: float | None) -> None:
        super().__init__(f"rate limited by Twitch until {reset_at}", status=429)
        self.reset_at = reset_at


class AuthFailed(HelixError):
    """The app credentials were refused, even with a freshly minted token."""


class LeaseLost(ClipCrawlerError):
    """Another consumer took over this job; stop without writing."""
