"""Stop a crawl that cannot reach Twitch at all, instead of retrying every streamer for minutes."""

from __future__ import annotations

from collections.abc import Callable

import httpx

CONNECT_FAILURES_IN_A_ROW = 5


class Unreachable(httpx.ConnectError):
    """Raised without trying once the service was found unreachable."""


class ReachabilityTransport(httpx.AsyncBaseTransport):
    """Counts connection failures in a row (an HTTP answer of any status resets it); past the limit, trips.

    Only failures to connect count: a 500 or a read timeout means Twitch is there, just unwell, and the
    usual retries handle that.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, on_unreachable: Callable[[str, str], None], *,
                 limit: int = CONNECT_FAILURES_IN_A_ROW) -> None:
        self.inner = inner
        self.on_unreachable = on_unreachable
        self.limit = limit
        self.failures = 0
        self.tripped: tuple[str, str] | None = None  # (url, why) of the failure that tripped it

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(query=None))
        if self.tripped is not None:
            raise Unreachable(f"not tried: {self.tripped[0]} could not be reached", request=request)
        try:
            response = await self.inner.handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self.failures += 1
            if self.failures >= self.limit and self.tripped is None:
                self.tripped = (url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
                self.on_unreachable(*self.tripped)
            raise
        self.failures = 0
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
