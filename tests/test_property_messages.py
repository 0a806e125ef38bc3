"""Whatever arrives on either queue, the consumer core ends it cleanly and touches nothing it may not.

Arbitrary JSON values (as the local queue delivers them, as JSON text and as bytes), arbitrary bytes and
text, deep nesting, and near-miss crawl and fan-out messages, handled by the jobs queue's core and by the
dead-letter queue's: no exception escapes, the message is acked, a message that was not processed has
exactly one dead_letters row, and no other table changes. More examples:
CLIPCRAWLER_MESSAGE_EXAMPLES=5000 make test-messages-property.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from consumer.core import Verdict, handle_dead_letter, handle_message
from local.clock import VirtualClock
from local.sqlite_db import SqliteDatabase
from shared import messages
from shared.config import Settings
from shared.errors import MalformedMessage
from shared.ports import Ports
from tests.scripted_helix import RecordingQueue

EXAMPLES = int(os.environ.get("CLIPCRAWLER_MESSAGE_EXAMPLES", "200"))
NOW = 1_790_000_000.0
SETTINGS = Settings(
    twitch_api_url="http://h/helix",
    twitch_auth_url="http://h/oauth2",
    twitch_client_id="cid",
    twitch_client_secret="secret-for-the-property-test",
    http_backoff_seconds=0,
)
WATCHED = ("runs", "jobs", "streamers", "clips", "app_tokens", "clip_views")
# Run 1 is running: job 1 (streamer 42) is held by a live consumer, job 2 (streamer 43) is queued.
SEED = [
    (
        "INSERT INTO streamers (id, login, added_at) VALUES ('42', 's42', '2026-01-01T00:00:00Z'), "
        "('43', 's43', '2026-01-01T00:00:00Z')"
    ),
    (
        "INSERT INTO app_tokens (client_id, access_token, expires_at, minted_at) "
        "VALUES ('cid', 'tok-abcdef', '2026-12-31T00:00:00Z', '2026-09-21T00:00:00Z')"
    ),
    (
        "INSERT INTO runs (id, kind, status, created_at, jobs_total, fanout_cursor) "
        "VALUES (1, 'manual', 'running', '2026-09-21T14:00:00Z', 2, '43')"
    ),
    (
        "INSERT INTO jobs (id, run_id, streamer_id, status, lease_token, lease_expires_at, due_at, "
        "created_at) "
        "VALUES (1, 1, '42', 'running', 'holder', '2099-01-01T00:00:00Z', '2026-09-21T14:00:00Z', "
        "'2026-09-21T14:00:00Z'), (2, 1, '43', 'queued', NULL, NULL, '2026-09-21T14:00:00Z', "
        "'2026-09-21T14:00:00Z')"
    ),
]
HELD, QUEUED = (1, 1, "42"), (1, 2, "43")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ids = st.integers(-2, 3) | st.sampled_from([2**53 - 1, 2**53, 10**20, True, 1.0, "1", None])
names = st.sampled_from(["42", "43", "44", "", " ", "\ud800", "4\x002"]) | st.text(max_size=6)
exact = st.sampled_from([messages.CrawlJob(*HELD).encode(), {**messages.CrawlJob(*HELD).encode(), "busy": 9}])
near_misses = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, True, 1.0, 2, "1", None]),
        "type": st.sampled_from(["crawl", "crawl", "fanout", "paint", ""]),
    },
    optional={
        "run_id": ids,
        "job_id": ids,
        "streamer_id": names,
        "seq": ids,
        "busy": ids,
        "after": names,
        "extra": json_values,
    },
)
nested = st.integers(1, 40_000).map(lambda n: "[" * n + "]" * n) | st.integers(1, 20_000).map(
    lambda n: '{"a":' * n + "1" + "}" * n
)


def as_delivered(value: Any, form: str) -> object:
    """A value as a queue might hand it over: the object itself, its JSON text, or UTF-8 bytes of it."""
    if form == "object":
        return value
    text = json.dumps(value, ensure_ascii=form == "ascii text")
    return text.encode("utf-8", "surrogatepass") if form == "bytes" else text


forms = st.sampled_from(["object", "text", "ascii text", "bytes"])
bodies = (
    st.builds(as_delivered, json_values | near_misses | exact, forms)
    | st.binary(max_size=64)
    | st.text(max_size=64)
    | nested
)


def names(body: object, jobs: set[tuple[int, int, str]]) -> bool:
    """True for a well-formed crawl message that names one of `jobs` exactly: that one may do its work."""
    try:
        message = messages.decode(body)
    except MalformedMessage:
        return False
    return (
        isinstance(message, messages.CrawlJob)
        and (message.run_id, message.job_id, message.streamer_id) in jobs
    )


def no_twitch(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a hostile message made a Twitch call: {request.url}")


Outcome = tuple[Verdict, dict[str, Any], dict[str, Any], list[Any], int]


async def handle(body: object, dead_lettered: bool) -> Outcome:
    """Handle `body` on a freshly seeded database: the verdict, the tables before and after,
    letters, sends.
    """
    db = await SqliteDatabase.open()
    queue = RecordingQueue()
    try:
        for sql in SEED:
            await db.run(sql)
        before = {t: await db.all(f"SELECT * FROM {t}") for t in WATCHED}
        async with httpx.AsyncClient(transport=httpx.MockTransport(no_twitch)) as http:
            ports = Ports(db=db, queue=queue, clock=VirtualClock(NOW), http=http)
            if dead_lettered:
                verdict = await handle_dead_letter(body, ports, SETTINGS)
            else:
                verdict = await handle_message(body, 1, ports, SETTINGS)
        after = {t: await db.all(f"SELECT * FROM {t}") for t in WATCHED}
        return verdict, before, after, await db.all("SELECT * FROM dead_letters"), len(queue.sent)
    finally:
        await db.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(body=bodies, dead_lettered=st.booleans())
def test_any_message_is_acked_recorded_when_unprocessed_and_changes_nothing_else(
    body: object, dead_lettered: bool
) -> None:
    # The queued job's own message crawls it, and the dead-letter queue's fails the job it names: their work.
    # A message for the held job is answered busy, and must leave it to its holder.
    assume(not names(body, {HELD, QUEUED} if dead_lettered else {QUEUED}))
    verdict, before, after, letters, sent = asyncio.run(handle(body, dead_lettered))
    assert verdict.ack, verdict
    assert after == before, f"{verdict.outcome}: a table changed"
    if verdict.outcome == "duplicate":  # a fan-out slice of a run that is past fanning out
        assert (letters, sent) == ([], 0)
    elif verdict.outcome == "busy":  # job 1's holder is alive: come back later, or give up after the retries
        assert (len(letters), sent) in ((0, 1), (1, 0)), (letters, sent)
    else:
        assert verdict.outcome in ("malformed", "permanent"), verdict
        [letter] = letters
        assert sent == 0
        assert letter["reason"] and letter["source"] == ("dlq" if dead_lettered else "consumer")
        assert len(letter["body"]) <= 4_000 and len(letter["reason"]) <= 1_000
