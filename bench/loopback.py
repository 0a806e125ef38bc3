"""A lean HTTP/1.1 client transport for the emulated Twitch on a loopback port.

Workers' `fetch` is native code: a Worker's Python pays nothing for HTTP framing or connection pooling.
httpx's own pool (httpcore) costs about a millisecond of CPU per request here, and with 50 invocations in
flight it checks every connection it holds on each request, so the benchmark would measure the client
library. This speaks just enough HTTP/1.1 to the emulator (Content-Length bodies, keep-alive) on plain
asyncio streams.
"""

from __future__ import annotations

import asyncio

import httpx

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Requests to one host and port, on keep-alive connections reused last-in first-out."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._idle: list[Connection] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        payload = _encode(request, await request.aread())
        while self._idle:
            reader, writer = self._idle.pop()
            answer = await _exchange(reader, writer, payload)
            if answer is not None:  # else the server closed the idle connection: take another
                return self._keep(reader, writer, answer)
            writer.close()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        answer = await _exchange(reader, writer, payload)
        if answer is None:
            writer.close()
            raise httpx.RemoteProtocolError(
                "the emulator closed the connection without answering", request=request
            )
        return self._keep(reader, writer, answer)

    def _keep(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        answer: tuple[int, list[tuple[bytes, bytes]], bytes, bool],
    ) -> httpx.Response:
        status, headers, body, keep_alive = answer
        if keep_alive:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return httpx.Response(status, headers=headers, content=body)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


def _encode(request: httpx.Request, body: bytes) -> bytes:
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
    lines += [
        b"%s: %s" % (name, value)
        for name, value in request.headers.raw
        if name.lower() not in (b"content-length", b"transfer-encoding", b"connection")
    ]
    lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool] | None:
    """Send one request and read its answer; None when the connection turns out to be closed."""
    try:
        writer.write(payload)
        await writer.drain()
        status_line = await reader.readline()
    except (ConnectionError, OSError):
        return None
    if not status_line:
        return None
    status = int(status_line.split(b" ", 2)[1])
    headers: list[tuple[bytes, bytes]] = []
    length = 0
    keep_alive = True
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        name, value = name.strip(), value.strip()
        lowered = name.lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"connection" and value.lower() == b"close":
            keep_alive = False
        elif lowered == b"transfer-encoding":
            raise httpx.RemoteProtocolError(f"unsupported transfer-encoding {value.decode()!r}")
        headers.append((name, value))
    return status, headers, await reader.readexactly(length), keep_alive
