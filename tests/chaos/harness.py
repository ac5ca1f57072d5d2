"""The chaos run: an emulator, a fault proxy, replicas under SIGKILL/SIGSTOP/SIGTERM, then the books are checked.

1. start `python -m daemon.devtools.emulator` and the fault proxy in front of it; `rotaudit provision` a stack;
   subscribe a queue to the SNS topic; create the secrets failures land on (`tests.chaos.workload`);
2. start the replicas (`rotaudit run`, AWS_ENDPOINT_URL = the proxy), remediation on, the scan every minute;
3. send the messages, paced over the chaos period, straight to the emulator (the harness is not under test);
4. meanwhile, on a timeline: SIGKILL a random replica and restart it, SIGSTOP the emulator then SIGCONT it,
   a rolling SIGTERM restart of every replica (each must exit 0); faults injected throughout;
5. wait (bounded) for the queue to empty and every remediation to settle, stop the replicas with SIGTERM;
6. check the table, the queues, the notifications and the logs (`tests.chaos.checks`), print and save figures.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.chaos import checks
from tests.chaos.processes import (
    ChaosError,
    Process,
    Replica,
    clean_env,
    http_json,
    start_emulator,
    start_proxy,
)
from tests.chaos.profiles import Profile, replica_env
from tests.chaos.workload import REGION, Plan, SecretMaker, Sender, Workload, build_workload, now_utc

BOTO_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 5})


class Run:
    """One chaos run; `execute()` returns the figures and the failures."""

    def __init__(self, profile: Profile, out: Path, seed: int) -> None:
        self.profile = profile
        self.out = out
        self.log_dir = out.parent / "logs"
        self.rng = random.Random(seed)
        self.seed = seed
        self.processes: list[Process] = []
        self.clients: list[Any] = []
        self.replicas: list[Replica] = []
        self.emulator: Process | None = None
        self.killed_pids: set[int] = set()
        self.figures: dict[str, Any] = {"kills": 0, "stall_s": 0.0, "rolling_restarts": 0, "restarts": 0}
        self.failures: list[str] = []
        self.phases: dict[str, float] = {}
        self._settled_rotations: set[str] = set()
        self.unexpected_exits: list[str] = []
        self.started = time.monotonic()
        self.memory: list[tuple[float, int]] = []  # (s since start, emulator RSS MiB), sampled as the harness waits
        self.actions: list[tuple[str, float, float]] = []  # (action, s since the run began, seconds it took)
        self._last_seen = ""

    def client(self, service: str, endpoint: str) -> Any:
        """A boto3 client straight to the emulator; closed at tear-down (the emulator's server waits for every
        open keep-alive connection before it exits)."""
        client = boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            config=BOTO_CONFIG,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.clients.append(client)
        return client

    # --- the run ------------------------------------------------------------------------------------------
    def execute(self) -> tuple[dict[str, Any], list[str]]:
        started = time.monotonic()
        for old in self.log_dir.glob("*.std*"):
            old.unlink()
        try:
            self._execute()
        finally:
            with self._phase("teardown"):
                self._tear_down()
        self.figures["wall_s"] = round(time.monotonic() - started, 1)
        self.figures["phases_s"] = {name: round(value, 1) for name, value in self.phases.items()}
        self.figures["actions"] = self.actions
        self.figures["emulator_rss_mb"] = self.memory[:: max(1, len(self.memory) // 60)]
        return self.figures, self.failures

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = time.monotonic() - started

    def _execute(self) -> None:
        profile = self.profile
        with self._phase("setup"):
            self.emulator, emulator_url = start_emulator(self.log_dir)
            self.processes.append(self.emulator)
            proxy, proxy_url = start_proxy(emulator_url, profile.fault_rate, self.seed, self.log_dir)
            self.processes.append(proxy)
            http_json(proxy_url + "/_chaos/config", {"rate": 0.0})  # set-up is not under test
            # The secrets first: the rotations the `retry` kind's set-up runs publish events, which no rule may
            # route to the queue yet.
            workload = self._workload(emulator_url)
            stack = self._provision(emulator_url)
            sqs, ddb = self.client("sqs", emulator_url), self.client("dynamodb", emulator_url)
            notes_url = self._subscribe(emulator_url, stack["topic_arn"])

        with self._phase("replicas_ready"):
            http_json(proxy_url + "/_chaos/config", {"rate": profile.fault_rate})
            env = replica_env(proxy_url, stack)
            self.replicas = [Replica(index, env, self.log_dir) for index in range(profile.replicas)]
            for replica in self.replicas:
                replica.start()
            for replica in self.replicas:
                replica.wait_ready()
        span_start = datetime.now(UTC)

        with self._phase("send_and_chaos"):
            sender = Sender(sqs, stack["queue_url"], workload.bodies, profile.send_s)
            sender.start()
            # The first window's scan runs at start-up: let it finish, so at least one window is checked whole.
            # A window that cannot finish is a finding, not a reason to stop the run.
            try:
                self._wait("the first scan run", lambda: self._scanned(ddb, stack["table_name"]), 60.0, 0.5)
            except ChaosError as exc:
                self.failures.append(f"no scan run finished in the first minute: {exc}")
            self._chaos(time.monotonic())
            self._wait("the sender to finish", lambda: not sender.is_alive(), profile.send_s + 120)
            if sender.error is not None:
                raise ChaosError(f"sending failed: {sender.error!r}")

        with self._phase("drain"):
            empty = functools.partial(self._queue_empty, sqs, stack["queue_url"])
            self._wait("the main queue to empty", empty, profile.drain_timeout_s)
        with self._phase("settle"):
            settled = functools.partial(self._settled, ddb, stack["table_name"], workload)
            self._wait("remediation to settle", settled, profile.settle_timeout_s, 2.0)

        with self._phase("stop"):
            self._watch()
            for replica in self.replicas:
                replica.signal_stop()
            for replica in self.replicas:
                replica.reap(replica.current, "final sigterm")
        span_end = datetime.now(UTC)
        with self._phase("check"):
            self.figures["emulator_cpu_s"] = round(self.emulator.cpu_s(), 1)
            self.figures["proxy_cpu_s"] = round(proxy.cpu_s(), 1)
            faults = http_json(proxy_url + "/_chaos/stats")
            self._check(ddb, sqs, stack, notes_url, workload, faults, sender.sent, (span_start, span_end))

    def _provision(self, emulator_url: str) -> dict[str, str]:
        prefix = f"chaos{uuid.uuid4().hex[:8]}"
        env = clean_env(AWS_ENDPOINT_URL=emulator_url)
        argv = [sys.executable, "-m", "daemon", "provision", "--prefix", prefix, "--output", "json"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise ChaosError(f"rotaudit provision exited {done.returncode}: {done.stderr.strip()[-500:]}")
        stack: dict[str, str] = json.loads(done.stdout)
        self.figures["prefix"] = prefix
        return stack

    def _subscribe(self, emulator_url: str, topic_arn: str) -> str:
        sqs, sns = self.client("sqs", emulator_url), self.client("sns", emulator_url)
        url = str(sqs.create_queue(QueueName=f"chaos-notes-{uuid.uuid4().hex[:8]}")["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        return url

    def _workload(self, emulator_url: str) -> Workload:
        plan = Plan(messages=self.profile.messages, failure_kinds=self.profile.failure_kinds)
        maker = SecretMaker(self.client("secretsmanager", emulator_url), emulator_url, f"chaos/{uuid.uuid4().hex[:6]}")
        # Failures must come after the set-up's own rotations, or the plan would find the secrets "rotated since";
        # event times have whole seconds, so they start two seconds on.
        return build_workload(plan, maker, self.rng, now_utc() + timedelta(seconds=2))

    # --- chaos --------------------------------------------------------------------------------------------
    def _chaos(self, started: float) -> None:
        for fraction, action in self.profile.timeline:
            due = started + fraction * self.profile.send_s
            while time.monotonic() < due:
                self._watch()
                time.sleep(min(0.5, max(0.0, due - time.monotonic())))  # spacing out the actions
            began = time.monotonic()
            {"kill": self._kill, "stall": self._stall, "rolling": self._rolling}[action]()
            self.actions.append((action, round(began - self.started, 1), round(time.monotonic() - began, 1)))

    def _kill(self) -> None:
        """SIGKILL a random replica, restart it at once."""
        replica = self.rng.choice(self.replicas)
        self.killed_pids.add(replica.current.pid)
        replica.kill()
        self.figures["kills"] += 1
        replica.start()
        self.figures["restarts"] += 1
        replica.wait_ready()

    def _stall(self) -> None:
        assert self.emulator is not None
        self.emulator.signal(signal.SIGSTOP)
        try:
            time.sleep(self.profile.stall_s)  # the stall itself
        finally:
            self.emulator.signal(signal.SIGCONT)
        self.figures["stall_s"] += self.profile.stall_s

    def _rolling(self) -> None:
        """One replica at a time, the way an ECS deployment replaces tasks: the replacement starts as the old task
        gets SIGTERM, and the next one goes once the replacement is ready; every old task must exit 0."""
        stopping: list[tuple[Replica, Process]] = []
        for replica in self.replicas:
            self._watch()
            stopping.append((replica, replica.current))
            replica.signal_stop()
            replica.start()
            self.figures["restarts"] += 1
            replica.wait_ready()
        for replica, old in stopping:
            replica.reap(old, "rolling sigterm")
        self.figures["rolling_restarts"] += 1

    def _watch(self) -> None:
        """A replica that exits on its own is a failure; restart it so the run can finish and be checked."""
        if self.emulator is not None:
            rss = round(self.emulator.rss_mb())
            self.memory.append((round(time.monotonic() - self.started, 1), rss))
            self.figures["emulator_rss_mb_max"] = max(rss, self.figures.get("emulator_rss_mb_max", 0))
        for replica in self.replicas:
            code = replica.died_unexpectedly()
            if code is not None:
                self.unexpected_exits.append(replica.current.name)
                self.failures.append(f"{replica.current.name} exited on its own with {code}: {replica.current.tail()}")
                replica.start()
                replica.wait_ready()

    def _wait(self, what: str, condition: Callable[[], bool], timeout_s: float, interval_s: float = 1.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            self._watch()
            if time.monotonic() > deadline:
                raise ChaosError(f"timed out after {timeout_s:.0f}s waiting for {what} ({self._last_seen})")
            time.sleep(interval_s)

    def _queue_empty(self, sqs: Any, url: str) -> bool:
        counts = checks.queue_counts(sqs, url)
        self._last_seen = f"main queue: {counts}"
        return not any(counts.values())

    def _scanned(self, ddb: Any, table: str) -> bool:
        runs = ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "run#scan"}},
            Select="COUNT",
        )["Count"]
        self._last_seen = f"{runs} scan runs"
        return bool(runs)

    def _settled(self, ddb: Any, table: str, workload: Workload) -> bool:
        """No remediation wake-up pending and a terminal remediation item for every failed rotation."""
        due = ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "remediation-due"}},
            Select="COUNT",
        )["Count"]
        open_ = 0
        for failed in workload.failed.values():
            if failed.rotation_id in self._settled_rotations:
                continue
            claim = ddb.get_item(
                TableName=table,
                Key={"pk": {"S": f"remediation#{failed.secret_arn}"}, "sk": {"S": f"claim#{failed.rotation_id}"}},
                ConsistentRead=True,
            ).get("Item")
            stage = claim.get("stage", {}).get("S") if claim else None
            if stage in (None, "settling", "acting", "retry_due", "rotated"):
                open_ += 1  # undecided, or waiting for its retry or its retry's outcome
            else:  # a finished remediation stays finished
                self._settled_rotations.add(failed.rotation_id)
        self._last_seen = f"{due} wake-ups pending, {open_} of {len(workload.failed)} failed rotations unsettled"
        return due == 0 and open_ == 0

    # --- the books ----------------------------------------------------------------------------------------
    def _check(
        self,
        ddb: Any,
        sqs: Any,
        stack: dict[str, str],
        notes_url: str,
        workload: Workload,
        faults: dict[str, Any],
        sent: int,
        span: tuple[datetime, datetime],
    ) -> None:
        items = checks.table_items(ddb, stack["table_name"])
        records = list(checks.log_records(self.log_dir))
        notes = checks.drain_notifications(sqs, notes_url)
        publish_lost = int(faults["by_operation"].get("error_after sns.Publish", 0))
        cancelled = sum(int(r.get("batches", 0)) for _, r in records if r.get("event") == "consumer.drain_timed_out")
        interrupted = len(self._all_killed()) + cancelled + len(self.unexpected_exits)
        dlq = checks.queue_counts(sqs, stack["dlq_url"])
        if any(dlq.values()):
            self.failures.append(f"the DLQ holds messages, and none was expected: {dlq}")
        self.figures.update(
            {
                "messages_sent": sent,
                "distinct_events": workload.distinct,
                "managed_secrets": workload.managed_secrets,
                **checks.check_events(items, workload, self.failures),
                **checks.check_remediations(items, workload, self.failures),
                **checks.check_notifications(notes, workload, publish_lost, interrupted, self.failures),
                **checks.check_scans(items, records, workload, span, self._all_killed(), self.failures),
                **checks.check_exits({f"replica-{r.index}": r.exit_codes for r in self.replicas}, self.failures),
                "dlq_messages": sum(dlq.values()),
                "faults_injected": faults["injected"],
                "faults_total": sum(faults["injected"].values()),
                "faults_by_operation": faults["by_operation"],
                "proxy_forwarded": faults["forwarded"],
                "slow_calls": faults["slow_calls"],
                "calls_by_operation": faults["calls"],
                **checks.log_summary(records),
            }
        )

    def _all_killed(self) -> set[int]:
        """Pids SIGKILLed on purpose, or because SIGTERM did not stop them in time."""
        return self.killed_pids.union(*(replica.forced_pids for replica in self.replicas))

    def _tear_down(self) -> None:
        if self.emulator is not None:
            self.emulator.signal(signal.SIGCONT)  # never leave it stopped
        for replica in self.replicas:
            code = replica.current.stop(timeout_s=30)
            if not replica.expect_exit:
                replica.exit_codes.append(("teardown", code))
        for client in self.clients:
            client.close()
        for process in reversed(self.processes):
            began = time.monotonic()
            code = process.stop(timeout_s=5.0)  # the emulator's server waits out open long polls: no need
            self.figures.setdefault("stopped", {})[process.name] = (code, round(time.monotonic() - began, 1))
