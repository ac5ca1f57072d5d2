"""A small HTTP proxy in front of the emulator that can hold one service's requests: in-flight work on demand.

The emulator answers at once, so a test that needs the daemon *busy* (a write that has not returned when a
signal arrives) puts this between the daemon and the emulator and stalls DynamoDB; SQS passes through.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
from aiohttp import web

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class StallProxy:
    """Forwards every request to `upstream`; requests whose X-Amz-Target starts with `stalled` wait while held."""

    def __init__(self, upstream: str, port: int, stalled: str = "DynamoDB_") -> None:
        self.upstream = upstream.rstrip("/")
        self.port = port
        self.stalled = stalled
        self.held = 0
        self._open: asyncio.Event | None = None
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StallProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def hold(self) -> None:
        """From now on, stalled requests wait until the proxy closes."""
        asyncio.run_coroutine_threadsafe(self._hold(), self._loop).result(timeout=10)

    async def _hold(self) -> None:
        assert self._open is not None
        self._open.clear()

    async def _start(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        assert self._open is not None
        self._closing = True  # held requests are dropped, never forwarded late
        self._open.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        assert self._open is not None
        if request.headers.get("X-Amz-Target", "").startswith(self.stalled) and not self._open.is_set():
            self.held += 1
            await self._open.wait()
            if self._closing:
                return web.Response(status=503)
        headers: dict[str, Any] = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=upstream.status, body=payload, headers=out)
