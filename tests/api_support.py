"""For the API, dashboard and notification tests: the app on a local stack, checked against openapi.json."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from local.commands.serve import HostRouter
from local.emulator.app import Handler, Reply, helix_error
from producer.app import create_app
from producer.context import AppContext
from shared.ports import Database, Ports
from tests.conftest import Stack, StackFactory

TOKEN = "api-token-Zq8vW2xN4rT6yU1iO3pA5s"
WEBHOOK = "https://hooks.test/services/T0000/B0000/hook-secret-9f8e7d"
PUBLIC_URL = "https://crawler.example"
SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
_REGISTRY = Registry().with_resource(
    "urn:openapi", Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


@dataclass
class Webhook:
    """A Slack-like receiver: records every post, answers `status`, or fails the connection."""

    status: int = 200
    fail: bool = False
    posts: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        self.posts.append(json.loads(request.content))
        return httpx.Response(self.status, text="ok" if self.status < 300 else "no_service")


class FailingStreamers:
    """An emulator wrap: Get Clips answers 500 for the streamers in `ids`; Get Users `users_error` if set."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.users_error: Reply | None = None

    def __call__(self, name: str, handler: Handler) -> Handler:
        async def faulty(request: Any) -> Reply:
            if name == "clips" and request.query_params.get("broadcaster_id") in self.ids:
                return helix_error(500, "Internal Server Error")
            if name == "users" and self.users_error is not None:
                return self.users_error
            return await handler(request)

        return faulty if name in ("clips", "users") else handler


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The spec's path template and operation for a concrete request path, if it documents one."""
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None


def check_contract(response: httpx.Response) -> None:
    """Fail unless the status is documented for the operation and the JSON body matches its schema."""
    request = response.request
    found = operation_for(request.method, request.url.path)
    if found is None:
        return  # not an API operation (the dashboard, or a route that does not exist)
    template, operation = found
    status = str(response.status_code)
    assert status in operation["responses"], f"{request.method} {template} answered undocumented {status}"
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    pointer = "/".join(
        [
            "",
            "paths",
            template.replace("~", "~0").replace("/", "~1"),
            request.method.lower(),
            "responses",
            status,
            "content",
            "application~1json",
            "schema",
        ]
    )
    validator = Draft202012Validator({"$ref": f"urn:openapi#{pointer}"}, registry=_REGISTRY)
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, f"{request.method} {template} {status}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


@dataclass
class Api:
    """The producer app over ASGI, on a local stack; every answer is checked against openapi.json."""

    stack: Stack
    context: AppContext
    client: httpx.AsyncClient
    webhook: Webhook
    failing: FailingStreamers
    responses: list[httpx.Response] = field(default_factory=list)

    def use(self, *, db: Database | None = None, **changes: Any) -> None:
        """Answer from now on with another database (a recording wrapper, say) or other context fields."""
        if db is not None:
            changes["ports"] = replace(self.context.ports, db=db)
        self.context = replace(self.context, **changes)

    async def request(
        self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        response = await self.client.request(method, path, headers=headers, **kwargs)
        self.responses.append(response)
        check_contract(response)
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def run(self, run_id: int) -> dict[str, Any]:
        row = await self.stack.db.first("SELECT * FROM runs WHERE id = ?", run_id)
        assert row is not None
        return row

    async def fail_streamer(self, streamer_id: str) -> int:
        """Crawl a run in which `streamer_id`'s job fails for good; returns the run id."""
        self.failing.ids.add(streamer_id)
        started = await self.stack.runner.crawl()
        self.failing.ids.discard(streamer_id)
        return started.run_id


ApiFactory = Callable[..., Any]


@pytest.fixture
async def make_api(make_stack: StackFactory) -> AsyncIterator[ApiFactory]:
    clients: list[httpx.AsyncClient] = []

    async def make(
        streamers: int = 5,
        *,
        api_token: str = TOKEN,
        with_http: bool = True,
        base_url: str = "http://testserver",
        **settings: Any,
    ) -> Api:
        webhook = Webhook()
        failing = FailingStreamers()
        # A job fails on its first failed delivery: no waiting out retries.
        settings.setdefault("max_retries", 0)
        settings.setdefault("http_attempts", 1)
        settings.setdefault("webhook_url", WEBHOOK)
        settings.setdefault("public_url", PUBLIC_URL)
        stack = await make_stack(
            streamers,
            wrap=failing,
            transport_wrapper=lambda emulator: HostRouter(
                {"hooks.test": httpx.MockTransport(webhook.handle)}, emulator
            ),
            **settings,
        )
        ports = Ports(
            db=stack.db, queue=stack.runner.queue, clock=stack.clock, http=stack.http if with_http else None
        )
        context = AppContext(ports=ports, settings=stack.settings, api_token=api_token)

        async def factory(request: object) -> AppContext:
            return api.context  # read per request, so a test can swap it (Api.use)

        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(factory)), base_url=base_url)
        clients.append(client)
        api = Api(stack, context, client, webhook, failing)
        return api

    yield make
    for client in clients:
        await client.aclose()
