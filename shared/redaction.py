"""The one redaction of secrets, for log lines and for every error text that is stored or returned.

Known secret values (the client secret, the webhook URL, the API token, app tokens) are masked wherever
they appear, and credential-shaped text (`client_secret=...`, `Bearer ...`) whatever its value. The
process keeps one `Redactor` that learns every secret the entries, the CLI and the cores hand it, so code
far from the settings (a Helix error, a statement storing an error) can scrub its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter "secrets" would mask ordinary words and numbers
# A field whose name says it holds a credential is masked whatever its value.
_SECRET_KEY = re.compile(
    r"secret|token|password|passwd|authorization|cookie|webhook|session|csrf", re.IGNORECASE
)
# Credential-shaped text inside free text, e.g. an error message that quotes a request.
# Each keeps its first group and masks the rest of the match.
_SECRET_TEXT = [
    re.compile(r"(?i)(\b(?:bearer|oauth)\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(?i)(\b(?:client_secret|access_token|api_token|token)\"?\s*[=:]\s*\"?)[^&\s\"',;]+"),
    re.compile(r"(?i)(https://hooks\.slack\.com/)\S+"),
]


class SecretSettings(Protocol):
    """The settings' secret fields; Settings fits (imported, it would cycle: config -> errors -> here)."""

    @property
    def twitch_client_secret(self) -> str: ...

    @property
    def webhook_url(self) -> str: ...


class Redactor:
    """Masks known secret values, credential-shaped text, and fields named like credentials."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        kept = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        self.secrets: tuple[str, ...] = tuple(sorted(kept, key=len, reverse=True))

    @classmethod
    def for_settings(cls, settings: SecretSettings, *extra: str) -> Redactor:
        """Every secret the settings hold, plus `extra` ones (the API token, a minted app token)."""
        return cls([settings.twitch_client_secret, settings.webhook_url, *extra])

    def text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _SECRET_TEXT:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def value(self, key: str, value: Any) -> Any:
        """`value` as it may be logged under `key`: masked, or with secrets masked inside it."""
        if _SECRET_KEY.search(key) and value not in (None, "", 0, False):
            return MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(key, v) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.text(str(value))


_PROCESS = Redactor()


def install(redactor: Redactor) -> None:
    """Teach the process-wide redactor `redactor`'s secrets (it forgets none it already knows)."""
    remember(*redactor.secrets)


def remember(*secrets: str) -> None:
    """Mask these values in every error text from now on (process-wide, idempotent)."""
    global _PROCESS
    fresh = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH} - set(_PROCESS.secrets)
    if fresh:
        _PROCESS = Redactor([*_PROCESS.secrets, *fresh])


def remember_settings(settings: SecretSettings, *extra: str) -> None:
    """Remember every secret the settings hold, plus `extra` ones."""
    install(Redactor.for_settings(settings, *extra))


def scrub(text: str) -> str:
    """`text` with every secret this process knows of, and every credential-shaped string, masked."""
    return _PROCESS.text(text)


def scrub_optional(text: str | None) -> str | None:
    return None if text is None else _PROCESS.text(text)


def process_redactor() -> Redactor:
    return _PROCESS


def forget() -> None:
    """Forget every remembered secret: for tests, which each bring their own."""
    global _PROCESS
    _PROCESS = Redactor()
