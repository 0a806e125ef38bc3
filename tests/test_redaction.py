"""Issue 17, finding 4: Twitch's error text repeating the request must not put the secret anywhere.

Not in D1 (jobs.error, streamers.last_error, dead_letters), not in an API body (GET /runs/{id}/jobs,
GET /streamers, the 502 of POST /streamers), not on the dashboard, not in what the CLI prints.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local.emulator import EmulatorConfig
from shared import redaction, store
from shared.errors import HelixError
from shared.redaction import Redactor
from tests import api_support
from tests.api_support import TOKEN, ApiFactory

SECRET = "client-secret-Vb71Kq0Wm3"
CLI = Path(sys.executable).parent / "clipcrawler"

make_api = api_support.make_api


def echo(form: str) -> str:
    """A token endpoint's error text that repeats the request: form-encoded, as JSON, and bare."""
    fields = dict(pair.split("=", 1) for pair in form.split("&") if "=" in pair)
    return (
        f"the secret {fields.get('client_secret', '')} is not known; request was {form}; "
        f"as JSON {json.dumps(fields)}"
    )


def test_stored_error_text_is_scrubbed_cut_and_utf8_safe() -> None:
    redaction.remember(SECRET)
    batch = store.fail_job(
        1,
        1,
        "42",
        "t",
        "now",
        store.Calls(),
        "failed",
        f"{'x' * 995}{SECRET} and \ud800 client_secret=other-value",
    )
    error = next(p for p in batch["job"].params if isinstance(p, str) and p.startswith("xxx"))
    assert SECRET[:5] not in error and len(error) == 1_000  # masked before the cut: no half secret left
    letter = store.record_dead_letter(
        "consumer", None, f'{{"s": "{SECRET}", "bad": "\ud800"}}', "token=abcdefgh refused", "now"
    )
    body, reason = letter.params[3], letter.params[4]
    assert SECRET not in body and "\\ud800" in body and reason == "token=*** refused"
    body.encode("utf-8")


def test_a_helix_error_is_scrubbed_where_it_is_made() -> None:
    assert str(HelixError(f"token answered HTTP 403: got client_secret={SECRET}&x=1")) == (
        "token answered HTTP 403: got client_secret=***&x=1"
    )


async def test_an_echoing_token_endpoint_leaves_no_secret_in_d1_the_api_or_the_dashboard(
    make_api: ApiFactory,
) -> None:
    api = await make_api(3, config=EmulatorConfig(client_secret=SECRET, echo_refused_requests=True))
    # Twitch stops accepting the secret (rotated in the console), and repeats it in its refusal.
    emulator = api.stack.emulator
    emulator.config = dataclasses.replace(emulator.config, client_secret="rotated-secret-Xy12")
    emulator.expire_all_tokens()
    await api.stack.db.run("DELETE FROM app_tokens")
    started = await api.stack.runner.crawl()

    stored = [
        json.dumps(r)
        for r in [
            *await api.stack.db.all("SELECT error FROM jobs"),
            *await api.stack.db.all("SELECT last_error FROM streamers"),
            *await api.stack.db.all("SELECT reason, body FROM dead_letters"),
        ]
    ]
    assert any("client_secret=***" in text for text in stored), stored  # the refusal was stored, masked
    jobs = await api.get(f"/runs/{started.run_id}/jobs")
    streamers = await api.get("/streamers")
    added = await api.post("/streamers", json={"logins": ["newcomer"]})
    await api.post("/ui/login", token=None, data={"token": TOKEN})
    run_page = await api.get(f"/ui/runs/{started.run_id}", token=None)
    streamers_page = await api.get("/ui/streamers", token=None)
    assert added.status_code == 502 and "client_secret=***" in added.json()["message"]
    assert "client_secret=***" in jobs.text and "client_secret=***" in streamers.text
    assert "client_secret=***" in run_page.text
    for where, text in [
        ("D1", "\n".join(stored)),
        ("GET /runs/{id}/jobs", jobs.text),
        ("GET /streamers", streamers.text),
        ("POST /streamers", added.text),
        ("the run page", run_page.text),
        ("the streamers page", streamers_page.text),
    ]:
        assert SECRET not in text, f"the client secret leaked into {where}"


# --- the CLI, as a subprocess against an echoing token endpoint -----------------------------------------


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        form = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        body = json.dumps({"status": 403, "message": echo(form)}).encode()
        self.send_response(403)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def clipcrawler(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWITCH_", "CLIPCRAWLER_"))}
    env["TWITCH_CLIENT_SECRET"] = SECRET
    return subprocess.run(
        [
            str(CLI),
            "--db",
            str(tmp_path / "cc.sqlite"),
            "--twitch-auth-url",
            f"{url}/oauth2",
            "--twitch-api-url",
            f"{url}/helix",
            "--client-id",
            "cid",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_prints_no_secret_when_twitch_repeats_it(tmp_path: Path, echo_server: str) -> None:
    added = clipcrawler(tmp_path, echo_server, "streamers", "add", "someone")
    assert added.returncode == 2 and "refused the client credentials" in added.stderr
    clipcrawler(
        tmp_path,
        echo_server,
        "sql",
        "INSERT INTO streamers (id, login, added_at) VALUES ('1', 'someone', '2026-01-01T00:00:00Z')",
    )
    crawled = clipcrawler(tmp_path, echo_server, "crawl", "--json")
    assert crawled.returncode == 1 and json.loads(crawled.stdout)["failed"] == 1
    stored = clipcrawler(tmp_path, echo_server, "sql", "--json", "SELECT error FROM jobs")
    assert "refused the client credentials" in stored.stdout
    for name, done in (("streamers add", added), ("crawl", crawled), ("sql", stored)):
        assert SECRET not in done.stdout + done.stderr, f"clipcrawler {name} printed the secret"
    assert "the secret *** is not known" in added.stderr  # masked by value, not only by shape


def test_the_cli_installs_the_redactor_the_workers_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from local.cli import main

    sqlite3.connect(tmp_path / "x.sqlite").close()  # `sql` reads an existing database only
    assert (
        main(
            ["--db", str(tmp_path / "x.sqlite"), "sql", "SELECT 1"],
            {"CLIPCRAWLER_API_TOKEN": TOKEN, "TWITCH_CLIENT_SECRET": SECRET},
        )
        == 0
    )
    assert redaction.scrub(f"{TOKEN} {SECRET}") == "*** ***"
    assert isinstance(redaction.process_redactor(), Redactor)
