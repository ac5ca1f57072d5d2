"""`make bench` latency: how long an event takes from the queue to a readable audit item, on a running daemon.

One emulator process (`python -m daemon.devtools.emulator`) per latency: none added, then 20 ms added to every AWS
call (as in the ingest benchmark; nearer AWS's own round trips). First the emulator's own round trip per operation
is measured (SendMessage, ReceiveMessage, DeleteMessage, PutItem, GetItem and BatchGetItem, one call at a time), so
a reader can subtract what it adds. Then each contender — `rotaudit run` (`python -m daemon run`, deployed consumer
settings: 4 pollers, 20 s long polls; remediation and the age scan off as in the ingest benchmark) and the seed
tutorial's consumer (`bench.baseline_consumer`) — gets fresh resources, becomes ready (its long polls waiting on an
empty queue), and is sent distinct rotation events:
- **steady**: one SendMessage every 1/rate seconds;
- **burst**: after the steady events are all readable, SendMessageBatch calls of 10, ten at a time.
What is measured, per event: from the moment the harness's SendMessage (or SendMessageBatch) call returned — SQS's
SentTimestamp is stamped inside that call, so at most one send round trip earlier — to the return of the first
BatchGetItem with ConsistentRead that holds the item (polled about every 10 ms: at most 1.5 intervals plus one
BatchGetItem round trip late). The added latency is slept before a call is served, so SentTimestamp is still
stamped at the end of the send call and a read still sees the table as at the end of its call. Beside it, the
item's own `recorded_at` (the consumer's clock just before its write call) gives a lower bound. For rotaudit, its
own `rotaudit_event_lag_seconds` (now minus SentTimestamp when processing starts: the metric the
RotauditEventLagHigh alert reads) is averaged per phase as a cross-check.

    .venv/bin/python -m bench.latency [--latency-ms 0,20] [--rate 10] [--steady 300] [--burst 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

from bench import latency_report, results
from bench.contenders import Contender, clean_env, http_get, start
from bench.harness import BenchError, EmulatorProcess
from bench.latency_probe import Readability, Sample, round_trips, spread
from bench.workload import REGION, build_workload, clean_up, prepare
from daemon.events import Rejection, parse_message
from daemon.table import event_key

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
CONTENDERS = ("rotaudit", "baseline")
POLLERS = 4  # rotaudit's deployed ROTAUDIT_CONSUMER_CONCURRENCY
WAIT_TIME_S = 20  # rotaudit's deployed ROTAUDIT_WAIT_TIME_S (the baseline's is fixed at 20 too)
READY_TIMEOUT_S = 90.0
SEND_BATCH = 10
BURST_SENDERS = 10  # botocore's default connection pool


def distinct_bodies(count: int) -> list[str]:
    """`count` distinct rotation events from the ingest workload (seeded), in its order, duplicates dropped."""
    bodies = list(dict.fromkeys(build_workload(max(3, count * 3 // 2 + 3)).bodies))
    if len(bodies) < count:
        raise ValueError(f"the workload yields {len(bodies)} distinct events, not {count}")
    return bodies[:count]


def item_key(contender: str, body: str) -> tuple[str, str]:
    """The audit item's key each contender writes for an event."""
    if contender == "baseline":  # bench/baseline_consumer.py's key
        detail = json.loads(body)["detail"]
        arn = detail["additionalEventData"]["SecretId"]
        return f"secret#{arn}", f"{detail['eventTime']}#event#{detail['requestID']}#{detail['eventID']}"
    event = parse_message(body)
    if isinstance(event, Rejection):
        raise ValueError(f"rotaudit rejects a workload event: {event.reason}")
    key = event_key(event)
    return key["pk"], key["sk"]


def _lag_metric(contender: Contender) -> tuple[float, float]:
    """(sum, count) of rotaudit_event_lag_seconds; (0, 0) for a contender without metrics."""
    if not contender.http_port:
        return 0.0, 0.0
    _, text = http_get(f"http://127.0.0.1:{contender.http_port}/metrics")
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and line[0] != "#"}
    return values.get("rotaudit_event_lag_seconds_sum", 0.0), values.get("rotaudit_event_lag_seconds_count", 0.0)


class Run:
    """One contender on fresh resources: send, watch, and keep the evidence."""

    def __init__(self, name: str, emulator: EmulatorProcess, poll_s: float, out_dir: Path, timeout_s: float) -> None:
        self.name = name
        self.emulator = emulator
        self.timeout_s = timeout_s
        self.stack = prepare(emulator.endpoint_url, f"bench-lat-{name}-{uuid.uuid4().hex[:6]}", [])
        self.sqs = boto3.client("sqs", region_name=REGION, endpoint_url=emulator.endpoint_url)
        self.readability = Readability(emulator.endpoint_url, self.stack["table_name"], poll_s)
        self.harness_calls: Counter[str] = Counter()
        self.contender = start(
            name,
            endpoint_url=emulator.endpoint_url,
            stack=self.stack,
            workers=POLLERS,
            wait_time_s=WAIT_TIME_S,
            out_dir=out_dir,
            tag=f"latency-{emulator.latency_ms:g}ms",
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.contender.is_ready():
            self._check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"latency: {self.name} not ready within {READY_TIMEOUT_S:.0f}s")
            time.sleep(0.05)
        time.sleep(0.5)  # its first long polls are now waiting on the empty queue, as in service

    def _check_alive(self) -> None:
        if self.contender.process.poll() is not None:
            raise BenchError(f"latency: {self.contender.describe_failure()}")
        if self.readability.errors:
            raise BenchError(f"latency: polling the table failed: {self.readability.errors[0]}")

    def steady(self, bodies: list[str], rate_per_s: float) -> list[tuple[str, str]]:
        keys = [item_key(self.name, body) for body in bodies]
        started = time.monotonic()
        for n, (body, key) in enumerate(zip(bodies, keys, strict=True)):
            time.sleep(max(0.0, started + n / rate_per_s - time.monotonic()))
            self.sqs.send_message(QueueUrl=self.stack["queue_url"], MessageBody=body)
            self.readability.expect(key, time.time())
            self.harness_calls["sqs.SendMessage"] += 1
        return keys

    def burst(self, bodies: list[str]) -> list[tuple[str, str]]:
        """Every body at once: SendMessageBatch calls of 10, BURST_SENDERS at a time."""
        keys = [item_key(self.name, body) for body in bodies]

        def send(start_at: int) -> None:
            chunk = bodies[start_at : start_at + SEND_BATCH]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            response = self.sqs.send_message_batch(QueueUrl=self.stack["queue_url"], Entries=entries)
            sent_at = time.time()
            if response.get("Failed"):
                raise BenchError(f"latency: SendMessageBatch failed for {len(response['Failed'])} entries")
            for key in keys[start_at : start_at + SEND_BATCH]:
                self.readability.expect(key, sent_at)

        with ThreadPoolExecutor(max_workers=BURST_SENDERS) as pool:
            list(pool.map(send, range(0, len(bodies), SEND_BATCH)))  # list(): re-raises a sender's error
        self.harness_calls["sqs.SendMessageBatch"] += -(-len(bodies) // SEND_BATCH)
        return keys

    def wait_readable(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while self.readability.pending:
            self._check_alive()
            if time.monotonic() > deadline:
                left = self.readability.pending
                raise BenchError(f"latency: {self.name}: {left} items not readable within {self.timeout_s:.0f}s")
            time.sleep(0.05)

    def close(self) -> int:
        try:
            return self.contender.stop()
        finally:
            clean_up(self.emulator.endpoint_url, self.stack)


def _phase(samples: list[Sample], lag: tuple[float, float]) -> dict[str, Any]:
    """The figures of one phase: queue → readable and queue → write started, in seconds."""
    starts = [s.write_started_s for s in samples if s.write_started_s is not None]
    figures: dict[str, Any] = {
        "readable_s": spread([s.readable_s for s in samples]),
        "write_started_s": spread(starts) if starts else None,
        "sent_over_s": round(max(s.sent_at for s in samples) - min(s.sent_at for s in samples), 3),
        "last_readable_s": round(max(s.seen_at for s in samples) - min(s.sent_at for s in samples), 3),
    }
    if lag[1]:
        figures["own_event_lag_mean_s"] = round(lag[0] / lag[1], 3)
    return figures


def measure(
    name: str,
    emulator: EmulatorProcess,
    steady_bodies: list[str],
    burst_bodies: list[str],
    *,
    rate_per_s: float,
    poll_s: float,
    out_dir: Path,
    timeout_s: float,
) -> dict[str, Any]:
    """One contender's steady and burst phases; returns its figures."""
    run = Run(name, emulator, poll_s, out_dir, timeout_s)
    try:
        run.wait_ready()
        calls_before = emulator.stats()
        with run.readability:
            lag0 = _lag_metric(run.contender)
            steady_keys = run.steady(steady_bodies, rate_per_s)
            run.wait_readable()
            lag1 = _lag_metric(run.contender)
            burst_keys = run.burst(burst_bodies)
            run.wait_readable()
            lag2 = _lag_metric(run.contender)
            time.sleep(0.5)  # let the last deletes land before the calls are counted
            calls_after = emulator.stats()
    finally:
        exit_code = run.close()
    if exit_code != 0:
        raise BenchError(f"latency: {name} exited with {exit_code} after SIGTERM: {run.contender.describe_failure()}")
    harness = run.harness_calls + Counter({"dynamodb.BatchGetItem": run.readability.calls})
    calls = {op: n for op, n in sorted((calls_after - calls_before - harness).items()) if n > 0}
    events = len(steady_keys) + len(burst_keys)
    return {
        "contender": name,
        "latency_ms": emulator.latency_ms,
        "steady": _phase(run.readability.samples(steady_keys), (lag1[0] - lag0[0], lag1[1] - lag0[1])),
        "burst": _phase(run.readability.samples(burst_keys), (lag2[0] - lag1[0], lag2[1] - lag1[1])),
        "aws_calls": sum(calls.values()),
        "aws_calls_by_operation": calls,
        "aws_calls_per_event": round(sum(calls.values()) / events, 3),
        "harness_calls": dict(sorted(harness.items())),
        "poll_ticks": run.readability.ticks,
        "exit_code": exit_code,
    }


def _one_emulator(
    latency_ms: float, bodies: list[str], steady: int, probe_samples: int, contenders: tuple[str, ...], **how: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """At one injected latency: the emulator's round trips, then each contender's figures."""
    emulator = EmulatorProcess(latency_ms, how["out_dir"], name="latency-emulator")
    runs: list[dict[str, Any]] = []
    try:
        stack = prepare(emulator.endpoint_url, f"bench-lat-probe-{uuid.uuid4().hex[:6]}", [])
        try:
            trips = round_trips(emulator.endpoint_url, stack, probe_samples)
        finally:
            clean_up(emulator.endpoint_url, stack)
        line = latency_report.round_trip_line(trips)
        print(f"bench latency: {latency_ms:g} ms emulator round trips {line}", flush=True)
        for name in contenders:
            runs.append(measure(name, emulator, bodies[:steady], bodies[steady:], **how))
            print(f"bench latency: {latency_ms:g} ms {latency_report.run_line(runs[-1])}", flush=True)
    finally:
        emulator.stop()
    return trips, runs


def run(
    *,
    latencies: list[float] | None = None,
    rate_per_s: float = 10.0,
    steady: int = 300,
    burst: int = 200,
    probe_samples: int = 50,
    poll_s: float = 0.01,
    contenders: tuple[str, ...] = CONTENDERS,
    timeout_s: float = 300.0,
    out_dir: Path = OUT_DIR,
) -> dict[str, Any]:
    """Per latency, the emulator's round trips and every contender's phases; returns the `latency` section."""
    latencies = [0.0, 20.0] if latencies is None else latencies
    started = time.monotonic()
    bodies = distinct_bodies(steady + burst)
    trips: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    for latency_ms in latencies:
        how = {"rate_per_s": rate_per_s, "poll_s": poll_s, "out_dir": out_dir, "timeout_s": timeout_s}
        trips[f"{latency_ms:g}ms"], more = _one_emulator(latency_ms, bodies, steady, probe_samples, contenders, **how)
        runs += more
    parameters = {
        "latency_ms": latencies,
        "rate_per_s": rate_per_s,
        "steady_events": steady,
        "burst_events": burst,
        "probe_samples": probe_samples,
        "poll_s": poll_s,
        "pollers": POLLERS,
        "wait_time_s": WAIT_TIME_S,
        "contenders": list(contenders),
        "emulator": "python -m daemon.devtools.emulator, latency_ms added before serving each AWS call",
        "measured": latency_report.MEASURED,
        "wall_clock_s": round(time.monotonic() - started, 1),
    }
    return {
        "parameters": parameters,
        "emulator_round_trip_ms": trips,
        "runs": runs,
        "alert": latency_report.derive_alert(runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", default="0,20", help="comma-separated latencies added to each AWS call")
    parser.add_argument("--rate", type=float, default=10.0, help="steady events per second")
    parser.add_argument("--steady", type=int, default=300, help="events sent at the steady rate")
    parser.add_argument("--burst", type=int, default=200, help="events sent at once after the steady phase")
    parser.add_argument("--probe-samples", type=int, default=50, help="calls per operation timing the emulator")
    parser.add_argument("--poll-s", type=float, default=0.01, help="how often the table is read for new items")
    parser.add_argument("--only", default=",".join(CONTENDERS), help=f"comma-separated, from {', '.join(CONTENDERS)}")
    parser.add_argument("--out", type=Path, default=results.RESULTS, help="results file (latency section)")
    args = parser.parse_args(argv)
    chosen = tuple(name.strip() for name in args.only.split(",") if name.strip())
    latencies = [float(part) for part in args.latency_ms.split(",") if part.strip()]
    if (
        not chosen
        or not latencies
        or set(chosen) - set(CONTENDERS)
        or args.steady < 1
        or args.burst < 1
        or args.rate <= 0
    ):
        print("bench latency: need contenders from rotaudit, baseline and positive sizes", file=sys.stderr)
        return 2
    os.environ.clear()
    os.environ.update(clean_env())  # fake credentials for every client here: nothing reaches AWS
    try:
        section = run(
            latencies=latencies,
            rate_per_s=args.rate,
            steady=args.steady,
            burst=args.burst,
            probe_samples=args.probe_samples,
            poll_s=args.poll_s,
            contenders=chosen,
        )
    except BenchError as exc:
        print(f"bench latency: {exc}", file=sys.stderr)
        return 1
    path = results.update({"latency": section}, args.out)
    print(latency_report.summary(section))
    print(f"bench latency: wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
