"""Wrong client credentials: one refused mint a run, every job failed with Twitch's words, nothing lost.

Before, every consumer of the run asked Twitch for a token in turn (each waiting on the previous one's mint
claim): a local crawl of 200 streamers with a mistyped secret took about 99 s, printed a warning per
streamer, and spent 200 refused requests at id.twitch.tv an hour once deployed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from producer.retry_failed import retry_failed
from shared.clock import SystemClock
from tests.cli_support import run, user_env
from tests.conftest import Stack, StackFactory
from tests.served_app import served

WRONG = "not-the-secret-0"


class TokenRequests:
    """An emulator `wrap` recording the token endpoint's answers by status, and counting Get Clips calls."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.clips = 0

    def __call__(self, name: str, handler: Any) -> Any:
        async def counted(request: Any) -> Any:
            reply = await handler(request)
            if name == "token":
                self.statuses.append(reply.status)
            elif name == "clips":
                self.clips += 1
            return reply

        return counted


async def wrong_secret_stack(make_stack: StackFactory, streamers: int) -> tuple[Stack, TokenRequests]:
    """Streamers added with the right secret; then the secret is mistyped and no usable token is stored."""
    tokens = TokenRequests()
    stack = await make_stack(streamers, wrap=tokens)
    stack.runner.settings = stack.settings.with_(twitch_client_secret=WRONG)
    await stack.db.run("DELETE FROM app_tokens")
    tokens.statuses.clear()
    tokens.clips = 0
    return stack, tokens


async def failed_jobs(stack: Stack, run_id: int) -> list[dict[str, Any]]:
    return await stack.db.all("SELECT status, error FROM jobs WHERE run_id = ? ORDER BY id", run_id)


async def test_a_run_asks_twitch_once_and_fails_every_job_with_the_refusal(make_stack: StackFactory) -> None:
    stack, tokens = await wrong_secret_stack(make_stack, 30)
    started = await stack.runner.crawl()
    assert tokens.statuses == [403]  # the producer's mint; no consumer asked again
    jobs = await failed_jobs(stack, started.run_id)
    assert len(jobs) == 30 and {j["status"] for j in jobs} == {"failed"}
    assert {j["error"] for j in jobs} == {
        "auth: Twitch refused the client credentials (HTTP 403: invalid client secret)"
    }
    assert tokens.clips == 0
    run = await stack.db.first(
        "SELECT status, jobs_failed, helix_calls FROM runs WHERE id = ?", started.run_id
    )
    assert run == {"status": "finished", "jobs_failed": 30, "helix_calls": 1}  # the refused mint counted
    stored = await stack.db.first("SELECT refused_run_id, refused_error FROM app_tokens")
    assert stored is not None and stored["refused_run_id"] == started.run_id
    assert WRONG not in str(stored["refused_error"])


async def test_consumers_refused_after_a_revocation_mint_once_between_them(make_stack: StackFactory) -> None:
    """The producer found a usable token; Twitch revoked it and the secret is wrong: one consumer asks."""
    tokens = TokenRequests()
    stack = await make_stack(30, wrap=tokens, concurrency=10)
    first = await stack.runner.crawl()  # stores a token minted with the right secret
    assert {j["status"] for j in await failed_jobs(stack, first.run_id)} == {"done"}
    stack.runner.settings = stack.settings.with_(twitch_client_secret=WRONG)
    stack.emulator._tokens.clear()  # revoked: every consumer's Get Clips answers 401
    tokens.statuses.clear()
    tokens.clips = 0
    started = await stack.runner.crawl()
    assert tokens.statuses == [403]
    jobs = await failed_jobs(stack, started.run_id)
    assert len(jobs) == 30 and {j["status"] for j in jobs} == {"failed"}
    assert all("refused the client credentials" in str(j["error"]) for j in jobs)
    # Every call the emulator answered (the Get Clips refused with 401, the refused mint) is in the counters,
    # though no job wrote a page or handed itself back.
    counted = await stack.db.first("SELECT helix_calls FROM runs WHERE id = ?", started.run_id)
    assert counted == {"helix_calls": tokens.clips + len(tokens.statuses)}


async def test_a_new_run_and_a_retry_ask_twitch_again(make_stack: StackFactory) -> None:
    stack, tokens = await wrong_secret_stack(make_stack, 5)
    refused = await stack.runner.crawl()
    assert tokens.statuses == [403]
    again = await stack.runner.crawl()  # still wrong: the new run asks once more, and only once
    assert tokens.statuses == [403, 403]
    assert {j["status"] for j in await failed_jobs(stack, again.run_id)} == {"failed"}

    stack.runner.settings = stack.settings  # the secret fixed, the first run's failed jobs retried
    retried = await retry_failed(
        stack.db, stack.runner.queue, stack.clock, stack.runner.settings, refused.run_id
    )
    assert len(retried.requeued) == 5
    await stack.runner.drain()
    assert tokens.statuses == [403, 403, 200]
    assert {j["status"] for j in await failed_jobs(stack, refused.run_id)} == {"done"}
    assert await stack.db.first("SELECT refused_run_id FROM app_tokens") == {"refused_run_id": None}


def test_the_cli_says_once_that_twitch_refused_the_credentials(tmp_path: Path) -> None:
    """The installed `clipcrawler crawl` with a mistyped secret, against the emulator over real HTTP."""
    config = EmulatorConfig()
    world = HelixWorld(3, 12, clock=SystemClock())
    with served(create_emulator_app(world, config)) as base:
        env = user_env(
            TWITCH_CLIENT_ID=config.client_id,
            TWITCH_CLIENT_SECRET=config.client_secret,
            TWITCH_API_URL=f"{base}/helix",
            TWITCH_AUTH_URL=f"{base}/oauth2",
        )
        logins = [s.login for s in world.all_streamers()]
        added = run(["--db", "c.sqlite", "streamers", "add", *logins], cwd=tmp_path, env=env)
        assert added.code == 0, added.err
        with sqlite3.connect(tmp_path / "c.sqlite") as conn:
            conn.execute("DELETE FROM app_tokens")  # the token `add` minted would spare the crawl a mint
        crawled = run(
            ["--db", "c.sqlite", "crawl"], cwd=tmp_path, env={**env, "TWITCH_CLIENT_SECRET": WRONG}
        )
    assert crawled.code == 1, crawled.err
    said = [line for line in crawled.err.splitlines() if "refused" in line]
    assert said == [
        "clipcrawler: Twitch refused the client credentials (HTTP 403: invalid client secret): check "
        "TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET (or --client-id / --client-secret)"
    ], crawled.err
    assert "message_handled" not in crawled.err and "Traceback" not in crawled.err
    assert WRONG not in crawled.out + crawled.err
    assert "0 of 12 (12 failed)" in crawled.out
