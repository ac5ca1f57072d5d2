"""A reverse proxy in front of the emulator that answers a fraction of AWS calls with AWS-shaped faults.

Every SigV4-signed request is forwarded to the upstream emulator, except that, with probability `rate`, it is
answered instead with one of these faults, each in the error shape its service's protocol uses (what botocore
parses into an error code):

- `throttle` (before forwarding): 400 `ThrottlingException` (JSON 1.1: Secrets Manager, SSM, EventBridge),
  `ProvisionedThroughputExceededException` / `ThrottlingException` (DynamoDB, JSON 1.0), `RequestThrottled`
  (SQS, JSON 1.0 with the query-compatible `x-amzn-query-error` header), `Throttling` (STS, query XML), and
  `Throttled` with status 429 (SNS, query XML: the code and status AWS documents for `ThrottledException`);
- `error_before`: 500 `InternalError`-style or 503 `ServiceUnavailable`, nothing forwarded;
- `error_after`: the request IS forwarded and executed by the emulator, then the client gets a 500/503 anyway —
  a lost response, the case that tests whether retries are idempotent.

Requests to the emulator's own helpers (`/_rotaudit/...`, moto's `/moto-api/...`) and unsigned requests are never
faulted. `GET /_chaos/stats` returns what was injected (by kind, and by kind and operation); `POST /_chaos/config`
with `{"rate": 0.05}` changes the rate, and `mix`, `only` (operations), `match` (a body substring) and `budget`
(a number of faults) aim it at one precise call for a regression test.
Run it as `python -m tests.chaos.fault_proxy --upstream URL`; it prints `{"endpoint_url": ...}` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

KINDS = ("throttle", "error_before", "error_after")
DEFAULT_MIX = {"throttle": 0.4, "error_before": 0.3, "error_after": 0.3}
BYPASS_PREFIXES = ("/_rotaudit/", "/moto-api/", "/_chaos/")
# Hop-by-hop and length/encoding headers: aiohttp sets them for the new message.
_DROP_REQUEST = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "accept-encoding"})
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"})
UPSTREAM_TIMEOUT_S = 120.0  # longer than a 20 s long poll plus an emulator stall
SLOW_S = 5.0  # an upstream call slower than this is listed in the stats

# service -> (JSON type prefix or None for query/XML, throttle codes, 500 code)
_JSON_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#", "sqs": "com.amazonaws.sqs#"}
_THROTTLE_CODES = {
    "dynamodb": ("ProvisionedThroughputExceededException", "ThrottlingException"),
    "sqs": ("RequestThrottled",),
    "sns": ("Throttled",),
    "sts": ("Throttling",),
}
_INTERNAL_CODES = {
    "dynamodb": "InternalServerError",
    "sqs": "InternalError",
    "sns": "InternalError",
    "sts": "InternalFailure",
    "secretsmanager": "InternalServiceError",
    "ssm": "InternalServerError",
    "events": "InternalException",
}
_XML_NAMESPACES = {
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


@dataclass(frozen=True, slots=True)
class Call:
    """What the proxy knows of one signed AWS call."""

    service: str
    operation: str
    json_protocol: bool
    json_version: str = "1.1"

    @property
    def key(self) -> str:
        return f"{self.service}.{self.operation}"


def identify(headers: Any, query: str, body: bytes) -> Call | None:
    """The service and operation of a SigV4-signed request; None for anything unsigned."""
    auth = str(headers.get("Authorization", ""))
    _, found, rest = auth.partition("Credential=")
    scope = rest.split(",", 1)[0].strip().split("/")
    if not found or len(scope) != 5:
        return None
    service = scope[3]
    target = str(headers.get("X-Amz-Target", ""))
    if target:
        content_type = str(headers.get("Content-Type", ""))
        version = "1.0" if content_type.endswith("json-1.0") else "1.1"
        return Call(service, target.rsplit(".", 1)[-1], True, version)
    action = parse_qs(query).get("Action") or parse_qs(body.decode("utf-8", "replace")).get("Action")
    return Call(service, action[0] if action else "unknown", False)


def fault_response(call: Call, status: int, code: str, message: str) -> web.Response:
    """An AWS error response for `call`'s protocol that botocore parses into `code`."""
    request_id = str(uuid.uuid4())
    if call.json_protocol:
        body = {"__type": _JSON_PREFIX.get(call.service, "") + code, "message": message}
        headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
        if call.service == "sqs":  # awsQueryCompatible: the legacy code and fault type travel in a header
            headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
        return web.Response(
            status=status,
            body=json.dumps(body).encode(),
            headers=headers,
            content_type=f"application/x-amz-json-{call.json_version}",
        )
    namespace = _XML_NAMESPACES.get(call.service, "")
    xml = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{"Sender" if status < 500 else "Receiver"}</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return web.Response(
        status=status, body=xml.encode(), headers={"x-amzn-RequestId": request_id}, content_type="text/xml"
    )


def throttle_response(call: Call, rng: random.Random) -> web.Response:
    code = rng.choice(_THROTTLE_CODES.get(call.service, ("ThrottlingException",)))
    status = 429 if code == "Throttled" else 400
    return fault_response(call, status, code, "Rate exceeded (injected by the chaos fault proxy)")


def server_error_response(call: Call, rng: random.Random) -> web.Response:
    if rng.random() < 0.5:
        return fault_response(
            call, 503, "ServiceUnavailable", "Service unavailable (injected by the chaos fault proxy)"
        )
    code = _INTERNAL_CODES.get(call.service, "InternalFailure")
    return fault_response(call, 500, code, "Internal error (injected by the chaos fault proxy)")


@dataclass
class FaultPolicy:
    """How often, and which, faults are injected; what was injected so far."""

    rate: float = 0.05
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    rng: random.Random = field(default_factory=random.Random)
    injected: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    forwarded: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # every signed call, faulted or not, by operation
    upstream_errors: int = 0
    slow: list[tuple[str, float, float]] = field(default_factory=list)  # (operation, started epoch s, seconds)
    # Aiming, for tests that need one precise fault: only these operations, only bodies holding `match`,
    # and at most `budget` faults (None: no limit).
    only: frozenset[str] = frozenset()
    match: bytes = b""
    budget: int | None = None

    def draw(self, call: Call, body: bytes) -> str | None:
        """The fault for this call, or None to pass it through."""
        if (self.only and call.key not in self.only) or (self.match and self.match not in body):
            return None
        if self.budget is not None and sum(self.injected.values()) >= self.budget:
            return None
        if self.rng.random() >= self.rate:
            return None
        kinds = [kind for kind in KINDS if self.mix.get(kind, 0) > 0]
        return self.rng.choices(kinds, weights=[self.mix[k] for k in kinds])[0] if kinds else None

    def count(self, kind: str, call: Call) -> None:
        self.injected[kind] += 1
        self.by_operation[f"{kind} {call.key}"] += 1

    def stats(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "mix": self.mix,
            "injected": dict(self.injected),
            "by_operation": dict(self.by_operation),
            "forwarded": self.forwarded,
            "calls": dict(self.calls),
            "upstream_errors": self.upstream_errors,
            "slow_calls": self.slow[-200:],
        }


class FaultProxy:
    """The aiohttp application: forward, or fault, each request."""

    def __init__(self, upstream: str, policy: FaultPolicy) -> None:
        self.upstream = upstream.rstrip("/")
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/_chaos/stats", self._stats)
        app.router.add_post("/_chaos/config", self._config)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.policy.stats())

    async def _config(self, request: web.Request) -> web.Response:
        wanted = await request.json()
        if wanted.get("reset"):
            for counter in (self.policy.injected, self.policy.by_operation, self.policy.calls):
                counter.clear()
        if "rate" in wanted:
            self.policy.rate = float(wanted["rate"])
        if "mix" in wanted:
            self.policy.mix = {str(k): float(v) for k, v in wanted["mix"].items()}
        if "only" in wanted:
            self.policy.only = frozenset(str(key) for key in wanted["only"])
        if "match" in wanted:
            self.policy.match = str(wanted["match"]).encode()
        if "budget" in wanted:
            self.policy.budget = None if wanted["budget"] is None else int(wanted["budget"])
        return web.json_response(self.policy.stats())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        call = (
            None if request.path.startswith(BYPASS_PREFIXES) else identify(request.headers, request.query_string, body)
        )
        kind = self.policy.draw(call, body) if call is not None else None
        if call is not None:
            self.policy.calls[call.key] += 1
        if call is not None and kind == "throttle":
            self.policy.count(kind, call)
            return throttle_response(call, self.policy.rng)
        if call is not None and kind == "error_before":
            self.policy.count(kind, call)
            return server_error_response(call, self.policy.rng)
        started, clock = time.time(), time.monotonic()
        response = await self._forward(request, body, call)
        elapsed = time.monotonic() - clock
        if call is not None and elapsed > SLOW_S and call.operation != "ReceiveMessage":  # long polls wait on purpose
            self.policy.slow.append((call.key, round(started, 3), round(elapsed, 3)))
        if call is not None and kind == "error_after" and response.status < 300:
            self.policy.count(kind, call)  # the emulator executed it; the client never hears so
            return server_error_response(call, self.policy.rng)
        return response

    async def _forward(self, request: web.Request, body: bytes, call: Call | None) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
        try:
            async with self._session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body, allow_redirects=False
            ) as upstream:
                payload = await upstream.read()
                kept = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE]
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.policy.upstream_errors += 1
            if call is None:
                return web.Response(status=502, text=f"upstream unreachable: {type(exc).__name__}")
            return fault_response(call, 503, "ServiceUnavailable", f"upstream unreachable: {type(exc).__name__}")
        self.policy.forwarded += 1
        response = web.Response(status=upstream.status, body=payload)
        for key, value in kept:
            response.headers.add(key, value)
        return response


async def serve(upstream: str, host: str, port: int, policy: FaultPolicy) -> None:
    """Serve until SIGTERM/SIGINT; print the endpoint once listening."""
    # A client that hangs up (a replica SIGKILLed mid long poll) cancels its forward; a stop waits for nobody.
    runner = web.AppRunner(
        FaultProxy(upstream, policy).app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # port 0: the OS picks a free port as it binds, so no other process can take it
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    print(json.dumps({"endpoint_url": f"http://{host}:{sock.getsockname()[1]}"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.fault_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the emulator's URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--rate", type=float, default=0.05, help="fraction of AWS calls answered with a fault")
    parser.add_argument("--mix", default=json.dumps(DEFAULT_MIX), help="JSON weights of throttle/error_before/after")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    policy = FaultPolicy(rate=args.rate, mix=json.loads(args.mix), rng=random.Random(args.seed))
    asyncio.run(serve(args.upstream, args.host, args.port, policy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
