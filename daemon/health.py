"""HTTP for operators on one port: `/metrics` (Prometheus), `/healthz` (loops alive), `/readyz` (serving)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon.metrics import Metrics

Check = Callable[[], tuple[bool, str]]


class HealthServer:
    """A small aiohttp site; `live` and `ready` are callables so the app decides what they mean."""

    def __init__(self, metrics: Metrics, *, live: Check, ready: Check, host: str, port: int) -> None:
        self.metrics = metrics
        self.live = live
        self.ready = ready
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._app = app

    async def start(self) -> int:
        """Bind and serve; return the bound port (useful when `port` is 0)."""
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # aiohttp exposes no public accessor for the bound socket
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return _status(*self.live())

    async def _readyz(self, _: web.Request) -> web.Response:
        return _status(*self.ready())


def _status(ok: bool, reason: str) -> web.Response:
    return web.json_response({"ok": ok, "reason": reason}, status=200 if ok else 503)
