"""`clipcrawler serve` as a user starts it: the installed program on a loopback port, asked over real HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli_support import CLIPCRAWLER, closed_port, user_env

TOKEN = "serve-test-token-0123456789"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = closed_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(CLIPCRAWLER), "--db", "s.sqlite", "serve", "--emulated", "--port", str(port)],
        cwd=tmp_path,
        env=user_env(CLIPCRAWLER_API_TOKEN=TOKEN),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                httpx.get(f"{base}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_forwarded_for_header_does_not_lift_the_wrong_token_block(served: str) -> None:
    """uvicorn trusts X-Forwarded-For from loopback by default: every guess could claim a new address."""
    with httpx.Client(base_url=served, timeout=10) as http:
        codes = [
            http.get("/runs", headers={"Authorization": f"Bearer wrong-{i}"}).status_code for i in range(11)
        ]
        assert codes[-1] == 429, codes
        spoofed = http.get(
            "/runs", headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "10.9.8.7"}
        )
        assert spoofed.status_code == 429 and spoofed.headers["Retry-After"].isdigit()
