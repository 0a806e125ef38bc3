"""Running the installed `clipcrawler` as a user does: a subprocess, on a pipe or in a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CLIPCRAWLER = Path(sys.executable).with_name(
    "clipcrawler"
)  # the console script `make install` put in .venv/bin


@dataclass
class Finished:
    code: int
    out: str
    err: str
    seconds: float


def user_env(**extra: str) -> dict[str, str]:
    """A shell user's environment: no Twitch credentials or database from the test runner's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWITCH_", "CLIPCRAWLER_", "CLOUDFLARE_", "PYTEST"))
    }
    return {**env, **extra}


def run(
    args: Sequence[str], *, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> Finished:
    began = time.monotonic()
    done = subprocess.run(
        [str(CLIPCRAWLER), *args],
        cwd=cwd,
        env=env or user_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - began)


def run_in_pty(
    args: Sequence[str],
    *,
    cwd: Path,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    on_output: Callable[[str, subprocess.Popen[bytes]], None] | None = None,
) -> Finished:
    """Run with stdin, stdout and stderr on a pseudo-terminal (so the progress bar draws); `out` has it all.

    `on_output(everything_so_far, process)` is called after each chunk, e.g. to send a signal mid-run.
    """
    leader, follower = pty.openpty()
    began = time.monotonic()
    process = subprocess.Popen(
        [str(CLIPCRAWLER), *args],
        cwd=cwd,
        env=env or user_env(),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
        start_new_session=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while time.monotonic() - began < timeout:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
            if on_output is not None:
                on_output(b"".join(chunks).decode(errors="replace"), process)
        code = process.wait(timeout=max(1.0, timeout - (time.monotonic() - began)))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        os.close(leader)
    return Finished(code, b"".join(chunks).decode(errors="replace"), "", time.monotonic() - began)


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
