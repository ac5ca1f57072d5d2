"""The embedded AWS emulator: moto's server in this process, a few pinned patches, per-call stats and latency.

`start_emulator()` runs moto's `ThreadedMotoServer` behind a WSGI middleware that counts AWS calls by
"service.Operation", can add a fixed latency to each, and serves `GET /_rotaudit/stats` and
`POST /_rotaudit/stats/reset` for harnesses that run the emulator in another process
(`python -m daemon.devtools.emulator`), and the rotation stand-in's `/_rotaudit/rotation/*` endpoints
(`daemon.devtools.rotation.control`).
`apply_patches()` adapts moto to what rotaudit relies on; each patch checks its target and raises `PatchError`
when moto's internals have moved, so an upgrade fails loudly instead of quietly changing behaviour.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import signal
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from daemon.devtools.patches import PINNED_MOTO, PatchError, apply_patches
from daemon.devtools.patches.registry import require
from daemon.devtools.rotation import control as rotation_control
from daemon.errors import EXIT_OK, EXIT_STARTUP

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

__all__ = ["PINNED_MOTO", "Emulator", "PatchError", "apply_patches", "start_emulator"]

STATS_PATH = "/_rotaudit/stats"
STATS_RESET_PATH = "/_rotaudit/stats/reset"


# --- the server and its middleware ------------------------------------------------------------------------
def _operation_key(environ: dict[str, Any]) -> str | None:
    """'service.Operation' for a SigV4-signed AWS call, None for anything else (moto-api, health probes)."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    _, found, rest = auth.partition("Credential=")
    scope = rest.split(",", 1)[0].strip().split("/")
    if not found or len(scope) != 5:
        return None
    service = scope[3]
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return f"{service}.{target.rsplit('.', 1)[-1]}"
    in_query = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    action = in_query[0] if in_query else _form_action(environ)
    return f"{service}.{action or 'unknown'}"


def _form_action(environ: dict[str, Any]) -> str | None:
    """The Action of a query-protocol body, leaving an unread copy of the body in place for moto."""
    length = str(environ.get("CONTENT_LENGTH") or "0")
    form = str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded")
    if not (form and length.isdigit() and int(length) > 0):
        return None
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return actions[0] if actions else None


class _CallMeter:
    """WSGI middleware: counts AWS calls, injects latency, and serves the stats endpoints."""

    def __init__(self, app: WsgiApp, latency_s: float) -> None:
        self._app = app
        self._latency_s = latency_s
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == STATS_PATH and method == "GET":
            return self._json(start_response, self.stats())
        if path == STATS_RESET_PATH and method == "POST":
            self.reset()
            return self._json(start_response, {})
        if path.startswith(rotation_control.PREFIX):
            status, payload = rotation_control.handle(
                method, path, str(environ.get("QUERY_STRING", "")), _body(environ)
            )
            return self._json(start_response, payload, status)
        key = _operation_key(environ)
        if key is not None:
            with self._lock:
                self._counts[key] += 1
            if self._latency_s > 0:
                time.sleep(self._latency_s)  # werkzeug serves each request in its own thread
        return self._app(environ, start_response)

    @staticmethod
    def _json(start_response: Callable[..., Any], payload: dict[str, Any], status: int = 200) -> list[bytes]:
        body = json.dumps(payload, sort_keys=True).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


def _body(environ: dict[str, Any]) -> bytes:
    length = str(environ.get("CONTENT_LENGTH") or "0")
    return environ["wsgi.input"].read(int(length)) if length.isdigit() and int(length) > 0 else b""


def _start_server(host: str, port: int, app: WsgiApp) -> Any:
    """moto's ThreadedMotoServer serving `app` (moto's dispatcher, wrapped); raises OSError if it cannot bind."""
    from moto.moto_server import threaded_moto_server as tms
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import make_server

    require(tms.ThreadedMotoServer, "server-middleware", "_server_entry", "stop")

    class MeteredMotoServer(tms.ThreadedMotoServer):
        error: Exception | None = None

        def _server_entry(self) -> None:
            # moto's own, with our app; and an error (port in use) must not leave start() waiting forever.
            try:
                handler = werkzeug_app.MotoRequestHandler
                self._server = make_server(self._ip_address, self._port, app, True, request_handler=handler)
            except SystemExit:  # werkzeug prints why it cannot bind, then calls sys.exit(1)
                self.error = OSError(f"cannot listen on {self._ip_address}:{self._port}")
            except Exception as exc:
                self.error = exc
            self._server_ready_event.set()
            if self._server is not None:
                self._server.serve_forever()

        def stop(self) -> None:
            super().stop()
            if self._server is not None:
                self._server.server_close()  # moto's stop() leaves the listening socket open

    server = MeteredMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    if server.error is not None:
        server.stop()
        raise server.error
    return server


@dataclass
class Emulator:
    """A running in-process emulator."""

    host: str
    port: int
    _server: Any = field(repr=False)
    _meter: _CallMeter = field(repr=False)

    @property
    def endpoint_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._server.stop()

    def stats(self) -> dict[str, int]:
        """AWS calls served since the last reset, keyed "service.Operation"."""
        return self._meter.stats()

    def reset_stats(self) -> None:
        self._meter.reset()


def start_emulator(
    host: str = "127.0.0.1", port: int = 4566, *, latency_ms: float = 0.0, patch: bool = True
) -> Emulator:
    """Start moto's ThreadedMotoServer in this process, wait until it answers, return a handle.

    port=0 lets the OS pick a free port as the socket is bound (no window for another process to take it).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    if patch:
        apply_patches()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines on stderr
    meter = _CallMeter(DomainDispatcherApplication(create_backend_app), latency_ms / 1000)
    server = _start_server(host, port, meter)
    bound_host, bound_port = server.get_host_and_port()
    emulator = Emulator(host=bound_host, port=bound_port, _server=server, _meter=meter)
    try:
        _wait_until_answering(emulator.endpoint_url + STATS_PATH, timeout_s=10.0)
    except OSError:
        emulator.stop()
        raise
    return emulator


def _wait_until_answering(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0):  # noqa: S310  # our own http:// URL
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    """`python -m daemon.devtools.emulator`: serve in the foreground until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m daemon.devtools.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep before serving each AWS call")
    parser.add_argument("--no-patch", action="store_true", help="run stock moto")
    args = parser.parse_args(argv)

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            emulator = start_emulator(args.host, args.port, latency_ms=args.latency_ms, patch=not args.no_patch)
        except (OSError, PatchError) as exc:
            print(f"emulator: cannot start: {exc}", file=sys.stderr)
            return EXIT_STARTUP
        print(json.dumps({"endpoint_url": emulator.endpoint_url}), flush=True)
        while not stop.wait(0.5):
            pass
        emulator.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())


def backdate_secret(name: str, days: float, *, region: str, account: str = "123456789012") -> None:
    """Make a secret in this process's emulator look `days` older: its creation, last change and versions.

    moto stamps everything with the current time and AWS offers no way to age a secret, so the demo and the
    tests age one in moto's backend (AWS-FACTS §7). Works only for an emulator running in this process.
    """
    from moto.backends import get_backend

    secret: Any = get_backend("secretsmanager")[account][region].secrets[name]  # FakeSecret
    shift = int(days * 86_400)
    secret.created_date -= shift
    secret.last_changed_date -= shift
    for version in secret.versions.values():
        version["createdate"] -= shift
