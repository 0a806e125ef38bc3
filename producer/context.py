"""What a request of the producer's app is handed: the ports, the settings and the API token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.ports import Ports


class FailureCounter(Protocol):
    async def over_limit(self, client: str, now: float) -> bool:
        """Count one failure for `client`; True once it has failed more than allowed in the window."""
        ...


@dataclass(frozen=True, kw_only=True)
class AppContext:
    """What a request needs: the ports, the settings and the API token (a secret)."""

    ports: Ports
    settings: Settings
    api_token: str
    behind_cloudflare: bool = False  # a Worker: trust CF-Connecting-IP as the caller's address
    failure_counter: FailureCounter | None = None  # the Rate Limiting binding, when the Worker has one

    def __repr__(self) -> str:
        return f"AppContext(settings={self.settings!r})"


# Production builds the context from the Worker's env (request.scope["env"]); local code passes one in.
ContextFactory = Callable[[Request], Awaitable[AppContext]]
Handler = Callable[[Request, AppContext], Awaitable[Response]]
