"""`clipcrawler serve`: the producer's app (API and dashboard) on loopback, against the local database.

Kicks and retries send to an in-process simulated queue that is drained in the background through
the local runner, so runs started from the dashboard actually progress.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from local.commands.common import db_path, int_between, settings_from
from local.emulated import EMULATOR_URL, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.queue import MAX_CONCURRENCY
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.app import create_app
from producer.context import AppContext
from shared.clock import SystemClock
from shared.config import Settings
from shared.errors import ConfigError
from shared.logs import Redactor, configure
from shared.ports import OutgoingMessage, Ports

log = logging.getLogger("clipcrawler.serve")
TOKEN_ENV = "CLIPCRAWLER_API_TOKEN"
MIN_TOKEN_LENGTH = 16


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help=f"serve the API and dashboard on loopback (token: {TOKEN_ENV})")
    serve.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8787, help="default 8787")
    twitch_flags(serve)
    serve.add_argument(
        "--concurrency",
        type=int_between(1, MAX_CONCURRENCY),
        default=50,
        help="consumer invocations at once (default 50)",
    )
    serve.set_defaults(handler=handle)


def twitch_flags(parser: argparse.ArgumentParser) -> None:
    """--emulated and its world, shared by the commands that crawl."""
    parser.add_argument(
        "--emulated",
        action="store_true",
        help="crawl the Helix emulator (the world `clipcrawler demo` uses) instead of Twitch",
    )
    parser.add_argument("--seed", type=int, default=1, help="the emulator's world (default 1)")
    parser.add_argument("--streamers", type=int, default=200, help="emulated streamers (default 200)")


def handle(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    token = env.get(TOKEN_ENV, "")
    if not token:
        raise ConfigError(f"set {TOKEN_ENV}: the API and dashboard never run without a token")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{TOKEN_ENV} is {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    check_loopback(args.host)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port has value {args.port}; expected 1-65535")
    settings = settings_from(args, env)
    if not args.emulated:
        settings.require_credentials()
    asyncio.run(serve(args, settings, token, db_path(args, env)))
    return 0


def check_loopback(host: str) -> None:
    """Plain HTTP with a bearer token is only safe on this machine."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"--host has value {host!r}; serve listens on loopback only (127.0.0.1 or ::1)")


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each request to the transport registered for its host, or to the network."""

    def __init__(
        self, routes: Mapping[str, httpx.AsyncBaseTransport], default: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.routes = dict(routes)
        self.default = default or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes.get(request.url.host, self.default).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in [*self.routes.values(), self.default]:
            await transport.aclose()


@contextlib.asynccontextmanager
async def twitch(
    args: argparse.Namespace,
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """The HTTP client and settings for Twitch: the emulator with --emulated (webhooks still go out)."""
    if not args.emulated:
        async with httpx.AsyncClient(transport=transport) as http:
            yield http, settings
        return
    config = EmulatorConfig()
    world = HelixWorld(args.seed, args.streamers, clock=SystemClock())
    emulator = httpx.ASGITransport(app=create_emulator_app(world, config))
    async with httpx.AsyncClient(transport=HostRouter({httpx.URL(EMULATOR_URL).host: emulator})) as http:
        yield http, emulator_settings(settings, config)


class DrainingQueue:
    """A QueueSender that wakes the background drain after every send."""

    def __init__(self, runner: LocalRunner) -> None:
        self.runner = runner
        self._wake = asyncio.Event()

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        await self.runner.queue.send_batch(messages)
        self._wake.set()

    async def run(self) -> None:
        """Drain whenever woken, until cancelled; a failing drain is logged and the loop goes on."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.runner.drain()
            except Exception as exc:
                log.error("background drain failed: %s", type(exc).__name__)


async def serve(args: argparse.Namespace, settings: Settings, token: str, path: str) -> None:
    import uvicorn  # CPython only, and only this command needs it

    db = await SqliteDatabase.open(path)
    clock = SystemClock()
    try:
        async with twitch(args, settings) as (http, crawl_settings):
            configure(Redactor.for_settings(crawl_settings, token))
            runner = LocalRunner(db, http, crawl_settings, clock, concurrency=args.concurrency)
            queue = DrainingQueue(runner)
            ports = Ports(db=db, queue=queue, clock=clock, http=http)
            context = AppContext(ports=ports, settings=crawl_settings, api_token=token)

            async def context_factory(request: object) -> AppContext:
                return context

            drain = asyncio.create_task(queue.run())
            config = uvicorn.Config(
                create_app(context_factory),
                host=args.host,
                port=args.port,
                log_level="info",
                lifespan="off",
                server_header=False,
                # Trusted from loopback by default, X-Forwarded-For would let every wrong
                # token claim a new address and step around the auth throttle.
                proxy_headers=False,
            )
            print(
                f"clipcrawler: dashboard on http://{args.host}:{args.port}/ (database {path})",
                file=sys.stderr,
            )
            try:
                await uvicorn.Server(config).serve()
            finally:
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
    finally:
        await db.close()
