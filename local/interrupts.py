"""Ctrl-C during a local crawl: the first stops cleanly, the second at once, both leave a usable database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from types import TracebackType
from typing import TextIO

from local.runner import LocalRunner

EXIT_INTERRUPTED = 130


class Interrupts:
    """While entered, SIGINT stops the runner: first letting invocations finish, then cancelling them."""

    def __init__(self, runner: LocalRunner, stream: TextIO = sys.stderr) -> None:
        self.runner = runner
        self.stream = stream
        self.count = 0
        self.target: asyncio.Task[object] | None = None  # cancelled on the second Ctrl-C
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def stopped(self) -> bool:
        return self.count > 0

    @property
    def hard(self) -> bool:
        return self.count > 1

    def __enter__(self) -> Interrupts:
        self._loop = asyncio.get_running_loop()
        self.target = asyncio.current_task()
        try:
            self._loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            self._loop = None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGINT)

    def _on_sigint(self) -> None:
        self.count += 1
        if self.count == 1:
            self.runner.stop()
            in_flight = self.runner.queue.in_flight() + self.runner.dlq.in_flight()
            waiting = (
                f"; waiting for the {in_flight} in flight to commit or hand their job back"
                if in_flight
                else ""
            )
            self._say(f"stopping: no new streamer is started{waiting} (Ctrl-C again to quit at once)")
        elif self.count == 2:
            self._say("quitting at once: cancelling the invocations in flight and handing their jobs back")
            if self.target is not None:
                self.target.cancel()
        else:
            os._exit(EXIT_INTERRUPTED)  # a third Ctrl-C: the user wants out, whatever is still running

    def _say(self, text: str) -> None:
        self.stream.write(f"\nclipcrawler: {text}\n")
        self.stream.flush()
