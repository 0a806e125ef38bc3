"""The deployable configuration: wrangler configs, migrations, each Worker's upload, and the SQL on real D1.

The tests that run wrangler need Node (npm ci is part of `make test`) and nothing else: no account, no
network. They are skipped only where Node itself is missing.
"""

from __future__ import annotations

import ast
import asyncio
import datetime
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from consumer.core import handle_dead_letter, handle_message
from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.retry_failed import retry_failed
from producer.streamers import add_streamers
from shared import bindings
from shared.config import Settings
from shared.messages import CrawlJob
from shared.ports import Database
from tests.workers_harness.launch import node_env

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ("producer", "consumer")
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
MIGRATIONS = ROOT / "migrations"
START = 1_790_000_000.0


def config(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / f"wrangler.{name}.toml").read_text())


def settings_of(worker: str) -> Settings:
    return Settings.from_env(config(worker)["vars"])


# --- the configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("worker", WORKERS)
def test_each_worker_is_a_python_worker_on_python_3_13(worker: str) -> None:
    c = config(worker)
    assert c["name"] == f"clipcrawler-{worker}" and c["main"] == f"{worker}/entry.py"
    assert (ROOT / c["main"]).is_file()
    assert "python_workers" in c["compatibility_flags"]
    assert datetime.date.fromisoformat(c["compatibility_date"]) >= datetime.date(2025, 9, 29)
    assert c["observability"]["enabled"] is True
    # The upload is what [build] stages under base_dir: this Worker's package and shared/.
    assert c["base_dir"] == f"build/{worker}"
    assert c["build"]["command"] == f"node scripts/stage-worker.mjs {worker}"


def test_pywrangler_reads_the_same_python_version_as_the_workers() -> None:
    # `pywrangler sync` picks the Python to vendor packages for from ./wrangler.toml only.
    shim = tomllib.loads((ROOT / "wrangler.toml").read_text())
    for worker in WORKERS:
        c = config(worker)
        assert (shim["compatibility_date"], shim["compatibility_flags"]) == (
            c["compatibility_date"],
            c["compatibility_flags"],
        )
    assert "main" not in shim and "name" not in shim  # not a Worker: a deploy without -c must fail


def test_both_workers_share_one_database_and_the_jobs_queue() -> None:
    for worker in WORKERS:
        [d1] = config(worker)["d1_databases"]
        assert (d1["binding"], d1["database_name"]) == (bindings.DB_BINDING, "clipcrawler")
        assert d1["migrations_dir"] == "migrations"
        assert d1["database_id"] == config("producer")["d1_databases"][0]["database_id"]
        [producer] = config(worker)["queues"]["producers"]
        assert (producer["binding"], producer["queue"]) == (bindings.QUEUE_BINDING, "clipcrawler-jobs")


def test_the_producer_runs_hourly() -> None:
    assert config("producer")["triggers"]["crons"] == ["0 * * * *"]


def test_the_consumer_takes_one_job_per_invocation_and_retries_as_the_code_expects() -> None:
    settings = settings_of("consumer")
    jobs, dead = config("consumer")["queues"]["consumers"]
    assert jobs["queue"] == "clipcrawler-jobs" and jobs["max_batch_size"] == 1
    assert 0 <= jobs["max_batch_timeout"] <= 60 and 1 <= jobs["max_concurrency"] <= 250
    # The retry policy fails a job on its last delivery; the queue must not give up earlier or later.
    assert jobs["max_retries"] == settings.max_retries == Settings().max_retries
    assert jobs["retry_delay"] == settings.retry_delay_seconds
    dead_letter_var = config("consumer")["vars"][bindings.DEAD_LETTER_QUEUE_VAR]
    assert jobs["dead_letter_queue"] == dead["queue"] == dead_letter_var
    assert dead["queue"] == bindings.DEFAULT_DEAD_LETTER_QUEUE and "dead_letter_queue" not in dead


def test_vars_are_valid_settings_shared_by_both_workers_and_hold_no_secret() -> None:
    producer, consumer = config("producer")["vars"], config("consumer")["vars"]
    assert settings_of("producer") == Settings.from_env({k: v for k, v in consumer.items() if k in producer})
    assert all(consumer[k] == v for k, v in producer.items())
    secrets = {"TWITCH_CLIENT_SECRET", "TWITCH_CLIENT_ID", bindings.API_TOKEN_VAR, "CLIPCRAWLER_WEBHOOK_URL"}
    assert not secrets & (set(producer) | set(consumer))
    assert all(isinstance(v, str) for v in (*producer.values(), *consumer.values()))  # env vars are text


# --- migrations -------------------------------------------------------------------------------------


def test_migrations_are_named_as_wrangler_creates_them() -> None:
    names = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    assert names and names[0] == "0000_initial.sql"
    for number, name in enumerate(names):
        assert re.fullmatch(rf"{number:04d}_[a-z0-9_]+\.sql", name), name


def structure(script: str) -> dict[str, Any]:
    """Tables (columns, keys, checks) and indexes (columns, uniqueness, partial WHERE), comments aside."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(script)
    shape: dict[str, Any] = {}
    for kind, name, table, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ):
        text = " ".join(re.sub(r"--[^\n]*", "", sql or "").split()).replace("IF NOT EXISTS ", "")
        if kind == "table":
            shape[name] = {
                "columns": conn.execute(f"PRAGMA table_xinfo({name})").fetchall(),
                "foreign_keys": conn.execute(f"PRAGMA foreign_key_list({name})").fetchall(),
                "checks": sorted(re.findall(r"CHECK \((?:[^()]|\([^()]*\))*\)", text)),
                "unique": sorted(re.findall(r"UNIQUE \([^)]*\)", text)),
            }
        elif kind == "index":
            shape[name] = {
                "table": table,
                "columns": conn.execute(f"PRAGMA index_xinfo({name})").fetchall(),
                "unique": " UNIQUE " in f" {text} ",
                "where": text.partition(" WHERE ")[2],
            }
        else:
            shape[name] = {"kind": kind, "sql": text}
    conn.close()
    return shape


def test_the_migrations_build_exactly_schema_sql() -> None:
    migrated = structure("\n".join(p.read_text() for p in sorted(MIGRATIONS.glob("*.sql"))))
    schema = structure((ROOT / "schema.sql").read_text())
    drifted = sorted(name for name in set(migrated) | set(schema) if migrated.get(name) != schema.get(name))
    assert not drifted, (
        f"schema.sql and migrations/ differ in {', '.join(drifted)}: put the change in a new migration "
        "(npx wrangler d1 migrations create DB <what_changed> -c wrangler.consumer.toml); while nothing is "
        "deployed yet, 0000_initial.sql can simply follow schema.sql"
    )


def test_the_drift_check_sees_a_changed_column() -> None:
    schema = (ROOT / "schema.sql").read_text()
    assert structure(schema) != structure(
        schema.replace(
            "failure_streak  INTEGER NOT NULL DEFAULT 0", "failure_streak  INTEGER NOT NULL DEFAULT 1"
        )
    )


# --- running wrangler ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wrangler_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment where wrangler runs offline: no account, telemetry or prompts; logs in a temp dir."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(
            "Node.js/npm is not installed: the wrangler tests need it (make test runs npm ci when it is)"
        )
    if not WRANGLER.exists():
        pytest.fail(f"{WRANGLER.relative_to(ROOT)} is missing: run `npm ci` (make test does)")
    home = tmp_path_factory.mktemp("wrangler-home")
    env = node_env(home)
    return env


def wrangler(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(WRANGLER), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"wrangler {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


# --- each Worker's upload -----------------------------------------------------------------------------

ALLOWED_IMPORTS = {"httpx", "starlette", "tenacity", "workers", "js", "pyodide"}  # vendored, or the runtime's
FIRST_PARTY = {"producer", "consumer", "shared", "local", "tests", "bench"}


def imports_of(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a user has it (local/ and tests/ included), so parallel runs don't share build/."""
    copy = tmp_path_factory.mktemp("repo") / "clipcrawler"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".venv-workers",
            "node_modules",
            "python_modules",
            "build",
            ".wrangler",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
        ),
    )
    return copy


@pytest.mark.parametrize("worker", WORKERS)
def test_a_dry_run_uploads_its_own_package_and_shared_and_nothing_else(
    worker: str, wrangler_env: dict[str, str], repo_copy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    wrangler(
        wrangler_env,
        "deploy",
        "--dry-run",
        "--outdir",
        str(out),
        "-c",
        f"wrangler.{worker}.toml",
        cwd=repo_copy,
    )
    uploaded = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "README.md"
    )  # wrangler's note about the folder
    expected = sorted(
        ["entry.py"]
        + [
            p.relative_to(ROOT).as_posix()
            for pkg in (worker, "shared")
            for p in (ROOT / pkg).rglob("*.py")
            if "__pycache__" not in p.parts and p.name != "entry.py"
        ]
    )
    assert uploaded == expected
    assert (out / "entry.py").read_text() == (ROOT / worker / "entry.py").read_text()  # the main module
    assert not [
        m
        for m in uploaded
        if m.split("/")[0] in {"local", "tests", "node_modules", "bench", "build"}
        or m.startswith(f"{'consumer' if worker == 'producer' else 'producer'}/")
    ]

    # The upload is self-contained: every first-party import resolves inside it, and every other import is
    # the standard library, a vendored dependency or the runtime's own module.
    present = {m.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for m in uploaded}
    for module in uploaded:
        for name in imports_of((out / module).read_text()):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                assert name in present or name.rpartition(".")[0] in present, f"{module} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top in ALLOWED_IMPORTS, f"{module} imports {name}"


# --- the SQL on Miniflare's D1 -------------------------------------------------------------------------


def database_id() -> str:
    return str(config("consumer")["d1_databases"][0]["database_id"])


@pytest.fixture(scope="module")
def migrated(wrangler_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local D1 database (Miniflare's, in a temp --persist-to) with the migrations applied by wrangler."""
    persist = tmp_path_factory.mktemp("d1")
    done = wrangler(
        wrangler_env,
        "d1",
        "migrations",
        "apply",
        bindings.DB_BINDING,
        "--local",
        "--persist-to",
        str(persist),
        "-c",
        "wrangler.consumer.toml",
    )
    for migration in MIGRATIONS.glob("*.sql"):
        assert migration.name in done.stdout
    return persist


def d1_execute(env: dict[str, str], persist: Path, sql: str) -> list[dict[str, Any]]:
    done = wrangler(
        env,
        "d1",
        "execute",
        bindings.DB_BINDING,
        "--local",
        "--persist-to",
        str(persist),
        "--json",
        "--command",
        sql,
        "-c",
        "wrangler.consumer.toml",
    )
    [answer] = json.loads(done.stdout)
    return list(answer["results"])


def test_wrangler_applies_the_migrations_to_local_d1(wrangler_env: dict[str, str], migrated: Path) -> None:
    done = wrangler(
        wrangler_env,
        "d1",
        "execute",
        bindings.DB_BINDING,
        "--local",
        "--persist-to",
        str(migrated),
        "--json",
        "-c",
        "wrangler.consumer.toml",
        "--command",
        "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' "
        "AND name != 'd1_migrations'; SELECT name FROM d1_migrations ORDER BY id",
    )
    objects, applied = (answer["results"] for answer in json.loads(done.stdout))
    assert {r["name"] for r in objects} == set(structure((ROOT / "schema.sql").read_text()))
    assert [r["name"] for r in applied] == sorted(p.name for p in MIGRATIONS.glob("*.sql"))


class MiniflareD1:
    """A D1 binding in the runtime SDK's shape whose calls run in Miniflare, via local/d1_bridge.mjs."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._lock = asyncio.Lock()
        self._next = 0

    @classmethod
    async def start(cls, persist: Path, env: dict[str, str]) -> MiniflareD1:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(ROOT / "local" / "d1_bridge.mjs"),
            str(persist / "v3" / "d1"),
            database_id(),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=2**24,
        )
        d1 = cls(process)
        assert json.loads(await d1._readline()) == {"ready": True}
        return d1

    async def _readline(self) -> bytes:
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        assert line, "the Miniflare bridge exited"
        return line

    async def call(self, op: str, statements: list[_Statement]) -> Any:
        async with self._lock:
            self._next += 1
            request = {
                "id": self._next,
                "op": op,
                "statements": [{"sql": s.sql, "params": s.params} for s in statements],
            }
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            await self._process.stdin.drain()
            answer = json.loads(await self._readline())
        assert answer["id"] == self._next
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def prepare(self, sql: str) -> _Statement:
        return _Statement(self, sql, [])

    async def batch(self, statements: list[_Statement]) -> Any:
        return await self.call("batch", statements)

    async def close(self) -> None:
        """Let the bridge dispose of Miniflare, which flushes the database to --persist-to."""
        assert self._process.stdin is not None
        if not self._process.stdin.is_closing():
            self._process.stdin.close()
        await asyncio.wait_for(self._process.wait(), 30)


class _Statement:
    def __init__(self, d1: MiniflareD1, sql: str, params: list[Any]) -> None:
        self.d1, self.sql, self.params = d1, sql, params

    def bind(self, *params: Any) -> _Statement:
        return _Statement(self.d1, self.sql, list(params))

    async def all(self) -> Any:
        return await self.d1.call("all", [self])

    async def first(self) -> Any:
        return await self.d1.call("first", [self])

    async def run(self) -> Any:
        return await self.d1.call("run", [self])


async def crawl_story(db: Database) -> dict[str, Any]:
    """Every statement in shared/store.py, through the real producer and consumer, on `db`.

    Streamers are added through Get Users; two hourly runs crawl them with a budget small enough to force
    continuations and a rate-limit bucket small enough to be shared as low; a dead-lettered job and a
    malformed message are handled; a late tick sweeps jobs whose messages never came. Answers what the
    tables hold.
    """
    clock = VirtualClock(START)
    world = HelixWorld(5, 4, (200, 400), clock=clock)
    config_ = EmulatorConfig(rate_limit_points=18)
    app = create_emulator_app(world, config_)
    async with emulator_client(app) as http:
        settings = emulator_settings(Settings(), config_).with_(http_backoff_seconds=0, external_limit=2)
        runner = LocalRunner(db, http, settings, clock, concurrency=2, seed=3)
        added = await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
        assert len(added.added) == 4
        first = await runner.crawl(scheduled_time=clock.now())
        clock.advance(3600)
        second = await runner.crawl(scheduled_time=clock.now())
        assert (first.opened, second.opened) == (True, True)
        clock.advance(3600)
        await runner.tick(scheduled_time=clock.now())  # jobs queued, messages not delivered
        queued = await db.first(
            "SELECT id, run_id, streamer_id FROM jobs WHERE status = 'queued' ORDER BY id"
        )
        assert queued is not None
        job = CrawlJob(int(queued["run_id"]), int(queued["id"]), str(queued["streamer_id"]))
        assert (await handle_dead_letter(job.encode(), runner.consumer_ports, settings)).ack
        assert (await handle_message("{not json", 1, runner.consumer_ports, settings)).ack
        clock.advance(settings.lease_seconds + 60)
        await runner.tick(scheduled_time=clock.now())  # sweeps the third run's jobs: no message came
        # A day on, with the plan's budget: the upkeep verifies (one clip deleted) and names the games.
        streamer = world.all_streamers()[0]
        doomed = world.clips(streamer.id, START - 86_400, START)[0]["id"]
        world.delete_clip(doomed, at=clock.now())
        clock.advance(86_400)
        full = LocalRunner(db, http, settings.with_(external_limit=0), clock, concurrency=2, seed=3)
        await full.crawl()
        assert full.queue.stats.sent
        # The token revoked and the secret mistyped: one refused mint fails the run's jobs; a retry with the
        # right secret clears the refusal and crawls them.
        app.state.emulator._tokens.clear()
        mistyped = settings.with_(external_limit=0, twitch_client_secret="mistyped-secret")
        refused = await LocalRunner(db, http, mistyped, clock, concurrency=2, seed=3).crawl()
        assert await db.first("SELECT refused_run_id FROM app_tokens") == {"refused_run_id": refused.run_id}
        await retry_failed(db, full.queue, clock, full.settings, refused.run_id)
        await full.drain()
    tables = {
        "runs": "SELECT id, kind, status, jobs_total, jobs_done, jobs_failed, pages, clips_seen, clips_new, "
        "clips_updated, clips_skipped, helix_calls, d1_calls, queue_sends FROM runs ORDER BY id",
        "jobs": "SELECT id, run_id, streamer_id, status, attempts, pages, clips_seen, clips_new, "
        "clips_updated, subrequests, max_subrequests, stop_reason, error, crawl_from, crawl_to "
        "FROM jobs ORDER BY id",
        "clips": "SELECT * FROM clips ORDER BY id",
        "streamers": "SELECT * FROM streamers ORDER BY id",
        "dead_letters": "SELECT source, job_id, body, reason FROM dead_letters ORDER BY id",
        "app_tokens": "SELECT * FROM app_tokens",
        "games": "SELECT * FROM games ORDER BY id",
    }
    story = {name: await db.all(sql) for name, sql in tables.items()}
    assert story["app_tokens"][0]["ratelimit_remaining"] is not None  # a low reading was shared
    assert [c["id"] for c in story["clips"] if c["deleted_at"]] == [doomed]
    assert story["games"] and any(c["next_check_at"] for c in story["clips"])
    assert {j["status"] for j in story["jobs"] if j["run_id"] == refused.run_id} == {"done"}
    assert story["app_tokens"][0]["refused_run_id"] is None
    for row in story["app_tokens"]:
        del row["access_token"]  # minted at random
    return story


@pytest.fixture
async def miniflare_d1(migrated: Path, wrangler_env: dict[str, str]) -> AsyncIterator[MiniflareD1]:
    d1 = await MiniflareD1.start(migrated, wrangler_env)
    try:
        yield d1
    finally:
        await d1.close()


async def test_every_statement_runs_on_d1_exactly_as_on_the_local_sqlite(
    miniflare_d1: MiniflareD1, migrated: Path, wrangler_env: dict[str, str]
) -> None:
    on_d1 = await crawl_story(bindings.D1Database(miniflare_d1))
    local = await SqliteDatabase.open()
    try:
        on_sqlite = await crawl_story(local)
    finally:
        await local.close()
    assert on_d1["clips"] and on_d1["runs"][0]["status"] == "finished"
    assert max(j["attempts"] for j in on_d1["jobs"]) > 1  # budget stops, continued through the queue
    assert [d["source"] for d in on_d1["dead_letters"]] == ["dlq", "consumer"]
    for table, rows in on_sqlite.items():
        assert on_d1[table] == rows, f"{table} differs between D1 and SQLite"
    await miniflare_d1.close()
    # What the crawl wrote is in the database wrangler itself reads.
    counted = d1_execute(wrangler_env, migrated, "SELECT count(*) AS n FROM clips")
    assert counted == [{"n": len(on_d1["clips"])}]
