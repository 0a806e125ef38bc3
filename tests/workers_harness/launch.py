"""Run harness.mjs once: its npm packages and wheels checked first, wrangler kept offline.

Used by tests/test_workers_harness.py and by `python -m bench.pyodide_cpu`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "workers_harness" / "harness.mjs"
WHEELS = ROOT / ".pyodide-wheels"
NODE_PACKAGES = ("pyodide", "miniflare", "wrangler")
TIMEOUT_S = 240


class Unavailable(Exception):
    """Node.js is not installed: the harness cannot run here at all."""


class NotReady(Exception):
    """What the harness needs is missing or failed to install."""


@dataclass(frozen=True)
class Run:
    result: dict[str, Any]  # RESULT.json, with the log's text under "log"
    returncode: int
    output: str  # the harness's stdout and stderr, their last 3,000 characters each
    log_tail: str

    @property
    def failed(self) -> bool:
        return self.returncode != 0 or "failure" in self.result or "tables" not in self.result


def node_env(home: Path) -> dict[str, str]:
    """Offline wrangler: no account, telemetry or prompts; its logs in a temp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "CF_", "WRANGLER_"))}
    env.update(
        CI="true",
        NO_COLOR="1",
        WRANGLER_SEND_METRICS="false",
        WRANGLER_SEND_ERROR_REPORTS="false",
        WRANGLER_HIDE_BANNER="true",
        WRANGLER_LOG_PATH=str(home / "logs"),
        XDG_CONFIG_HOME=str(home / "config"),
    )
    return env


def run(work: Path) -> Run:
    """Play the harness's story once in `work` (a fresh directory)."""
    if shutil.which("node") is None:
        raise Unavailable(
            "Node.js is not installed: the Workers harness runs the entries in Pyodide under Node "
            "(make test installs its npm packages when npm is there)"
        )
    missing = [p for p in NODE_PACKAGES if not (ROOT / "node_modules" / p / "package.json").exists()]
    if missing:
        raise NotReady(f"node_modules lacks {', '.join(missing)}: run `npm ci` (make test does)")
    fetched = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch-wheels"), str(WHEELS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if fetched.returncode != 0:
        raise NotReady(f"scripts/fetch-wheels failed:\n{fetched.stdout}{fetched.stderr}")
    out, log = work / "result.json", work / "harness.log"
    done = subprocess.run(
        ["node", str(HARNESS), "--python", sys.executable, "--wheels", str(WHEELS)]
        + ["--out", str(out), "--log", str(log)],
        cwd=ROOT,
        env=node_env(work),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    log_text = log.read_text() if log.exists() else ""
    result["log"] = log_text
    return Run(result, done.returncode, done.stdout[-3000:] + done.stderr[-3000:], log_text[-4000:])
