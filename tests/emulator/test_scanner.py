"""The age scan against the emulator over HTTP: the seed scenarios, classification, leases across replicas."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from daemon.aws import Aws
from daemon.config_values import ScanTarget
from daemon.metrics import Metrics
from daemon.scan.metrics import ScanMetrics
from daemon.scan.report import BatchWriter, compact_time
from daemon.scan.scanner import Scanner
from tests.support import REGION, free_port
from tests.support.scan import (
    ACCOUNT,
    FastClock,
    backdate,
    client,
    create_scan_table,
    create_secret,
    eventually,
    isolated_region,
    raw_table_dump,
    secret_model,
    set_rotation,
    table_items,
    true_version_dates,
)

WINDOW = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def table(endpoint: str) -> str:
    return create_scan_table(endpoint)


@pytest.fixture
async def home(endpoint: str) -> AsyncIterator[Aws]:
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        yield aws


def unique_tag() -> tuple[str, str]:
    """A tag no other test uses, so a scan of the shared home region sees only this test's secrets."""
    return f"Scan{uuid.uuid4().hex[:8]}", "yes"


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def names(prefix: str, *parts: str) -> dict[str, str]:
    return {part: f"{prefix}-{part}" for part in parts}


async def test_seed_scenario_checks_two_managed_secrets_and_writes_nothing_for_the_others(
    endpoint: str, home: Aws, table: str
) -> None:
    """Two Managed=true secrets are checked; Managed=false and the ManagedBy=true prefix trap get no row."""
    region, uid = isolated_region(), uuid.uuid4().hex[:6]
    sm = client("secretsmanager", endpoint, region)
    n = names(f"seed{uid}", "fresh", "stale", "ignored", "trap")
    for key, tags in [("fresh", {"Managed": "true"}), ("stale", {"Managed": "true"})]:
        create_secret(sm, n[key], tags)
    create_secret(sm, n["ignored"], {"Managed": "false"})
    create_secret(sm, n["trap"], {"ManagedBy": "true"})
    backdate(n["stale"], 45, region)
    scanner = Scanner(
        home, table, ScanMetrics(CollectorRegistry()), targets=(ScanTarget(regions=(region,)),), page_size=2
    )

    result = await scanner.run_once()

    assert result.summary() == {"run_id": result.run_id, "checked": 2, "flagged": 1}
    rows = {row["secret_name"]: row for row in table_items(endpoint, table, "scan")}
    assert set(rows) == {n["fresh"], n["stale"]}
    assert (rows[n["fresh"]]["status"], rows[n["fresh"]]["reasons"]) == ("ok", ["never_rotated", "rotation_disabled"])
    assert rows[n["stale"]]["status"] == "needs_rotation"
    assert rows[n["stale"]]["reasons"] == ["never_rotated", "older_than_max_age", "rotation_disabled"]
    assert {(row["account"], row["region"], row["run_id"]) for row in rows.values()} == {
        (ACCOUNT, region, result.run_id)
    }
    assert all(row["checked_at"].endswith("Z") for row in rows.values())
    (run,) = table_items(endpoint, table, "scan_run")
    assert (run["run_id"], run["checked"], run["flagged"], run["trigger"]) == (result.run_id, 2, 1, "once")
    assert run["scopes"] == [f"default/{region}"]
    # The prefix filter returned the trap too (3 entries, pages of 2): the exact re-check dropped it.
    assert sample(home.metrics, "rotaudit_aws_calls_total", service="secretsmanager", operation="list_secrets") == 2


async def test_classification_of_old_fresh_never_rotated_and_stuck_secrets(
    endpoint: str, home: Aws, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each kind of secret gets its status and reasons; only the two open cases cost a version lookup.

    Stand-in: moto's ListSecretVersionIds says every version was created "now"; AWS gives the true date, so the
    test swaps in a backend method that does (AWS-FACTS §7).
    """
    from moto.secretsmanager.models import SecretsManagerBackend

    monkeypatch.setattr(SecretsManagerBackend, "list_secret_version_ids", true_version_dates())
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    uid = uuid.uuid4().hex[:6]
    n = names(f"cls{uid}", "rotated-fresh", "rotated-old", "never-fresh", "never-old", "stuck", "overdue")
    n |= names(f"cls{uid}", "manual-version", "tag-bumped", "rotating")
    for name in n.values():
        create_secret(sm, name, {key: value})
    set_rotation(n["rotated-fresh"], rotated_days_ago=2, enabled=True, next_in_days=28)
    backdate(n["rotated-old"], 50)
    set_rotation(n["rotated-old"], rotated_days_ago=40)
    backdate(n["never-old"], 40)
    sm.put_secret_value(SecretId=n["stuck"], SecretString="pending-value", VersionStages=["AWSPENDING"])
    backdate(n["stuck"], 2 / 24)  # its AWSPENDING has dangled for two hours: past the 60-minute grace
    set_rotation(n["rotating"], rotated_days_ago=3, enabled=True, next_in_days=27)
    sm.put_secret_value(SecretId=n["rotating"], SecretString="pending-value", VersionStages=["AWSPENDING"])
    set_rotation(n["overdue"], rotated_days_ago=5, enabled=True, next_in_days=-1)
    for name in (n["manual-version"], n["tag-bumped"]):
        backdate(name, 60)
        set_rotation(name, rotated_days_ago=45)
    sm.put_secret_value(SecretId=n["manual-version"], SecretString="a manual new version")
    secret_model(n["tag-bumped"]).last_changed_date = int(time.time())  # AWS moves it on TagResource; moto does not

    result = await Scanner(home, table, ScanMetrics(CollectorRegistry()), tag=f"{key}={value}").run_once()

    rows = {row["secret_name"]: row for row in table_items(endpoint, table, "scan")}
    verdicts = {part: (rows[name]["status"], rows[name]["reasons"]) for part, name in n.items()}
    assert verdicts == {
        "rotated-fresh": ("ok", []),
        "rotated-old": ("needs_rotation", ["older_than_max_age", "rotation_disabled"]),
        "never-fresh": ("ok", ["never_rotated", "rotation_disabled"]),
        "never-old": ("needs_rotation", ["never_rotated", "older_than_max_age", "rotation_disabled"]),
        "stuck": ("needs_rotation", ["never_rotated", "stuck_pending", "rotation_disabled"]),
        "rotating": ("ok", []),  # AWSPENDING created a moment ago: a rotation in progress, not stuck
        "overdue": ("needs_rotation", ["rotation_overdue"]),
        "manual-version": ("ok", ["rotation_disabled"]),
        "tag-bumped": ("needs_rotation", ["older_than_max_age", "rotation_disabled"]),
    }
    assert rows[n["manual-version"]]["age_from"] == "current_version"
    assert float(rows[n["tag-bumped"]]["age_days"]) == pytest.approx(45, abs=0.01)
    assert float(rows[n["rotated-old"]]["age_days"]) == pytest.approx(40, abs=0.01)
    assert (result.checked, result.flagged) == (9, 5)
    lookups = sample(
        home.metrics, "rotaudit_aws_calls_total", service="secretsmanager", operation="list_secret_version_ids"
    )
    assert lookups == 3  # the two open ages, and the rotating secret's AWSPENDING inside the grace


async def test_the_injected_clock_makes_fresh_secrets_old(endpoint: str, home: Aws, table: str) -> None:
    """The same secrets are ok today and need rotation when the scanner's clock reads 60 days later."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    for i in range(2):
        create_secret(sm, f"clock{uuid.uuid4().hex[:6]}-{i}", {key: value})
    today = await Scanner(home, table, ScanMetrics(CollectorRegistry()), tag=f"{key}={value}").run_once()
    later = datetime.now(UTC).replace(microsecond=0) + (datetime(2026, 3, 2) - datetime(2026, 1, 1))
    future = await Scanner(
        home, table, ScanMetrics(CollectorRegistry()), tag=f"{key}={value}", now=lambda: later
    ).run_once()
    assert (today.checked, today.flagged, future.checked, future.flagged) == (2, 0, 2, 2)


async def test_three_replicas_started_together_make_one_run(endpoint: str, table: str) -> None:
    """Three replicas race for one window: one runs it, two skip it, and the table holds one run."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    for i in range(3):
        create_secret(sm, f"race{uuid.uuid4().hex[:6]}-{i}", {key: value})
    metrics = [Metrics() for _ in range(3)]
    async with AsyncExitStack() as stack:
        replicas = []
        for i, registry in enumerate(metrics):
            aws = await stack.enter_async_context(Aws(REGION, endpoint_url=endpoint))
            replicas.append(
                Scanner(aws, table, ScanMetrics(registry.registry), tag=f"{key}={value}", lease_s=2, replica_id=f"r{i}")
            )
        results = await asyncio.gather(*(replica.run_window(WINDOW) for replica in replicas))
    assert [r.run_id for r in results if r is not None] == [compact_time(WINDOW)]
    assert [run["run_id"] for run in table_items(endpoint, table, "scan_run")] == [compact_time(WINDOW)]
    assert len(table_items(endpoint, table, "scan")) == 3
    skipped = [sample(registry, "rotaudit_scan_runs_total", outcome="skipped") or 0 for registry in metrics]
    assert sorted(skipped) == [0, 1, 1]
    # The replicas that skipped show the run's figures too.
    assert [sample(registry, "rotaudit_secrets_checked") for registry in metrics] == [3, 3, 3]


async def test_replicas_on_a_short_schedule_make_one_run_per_window(endpoint: str, table: str) -> None:
    """Three replicas on rate(1 minute), with a clock running 30x: every window gets exactly one run."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    for i in range(2):
        create_secret(sm, f"sched{uuid.uuid4().hex[:6]}-{i}", {key: value})
    clock = FastClock(datetime(2030, 1, 1, 10, 0, 30, tzinfo=UTC), speed=20)
    stop, metrics = asyncio.Event(), [Metrics() for _ in range(3)]
    async with AsyncExitStack() as stack:
        replicas = []
        for i, registry in enumerate(metrics):
            aws = await stack.enter_async_context(Aws(REGION, endpoint_url=endpoint))
            options: dict[str, Any] = {"now": clock.now, "sleep": clock.sleep, "lease_s": 60, "replica_id": f"r{i}"}
            replicas.append(
                Scanner(
                    aws,
                    table,
                    ScanMetrics(registry.registry),
                    schedule="rate(1 minute)",
                    tag=f"{key}={value}",
                    **options,
                )
            )
        clock.restart()  # 10:00:30 now: the replicas start together, mid-window
        tasks = [asyncio.create_task(replica.run(stop)) for replica in replicas]
        await eventually(lambda: len(table_items(endpoint, table, "scan_run")) >= 3, timeout_s=40)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)
    runs = sorted(table_items(endpoint, table, "scan_run"), key=lambda run: run["run_id"])
    expected = [compact_time(WINDOW.replace(minute=m)) for m in range(len(runs))]
    assert [run["run_id"] for run in runs] == expected  # consecutive windows from the one in progress at start
    assert {run["checked"] for run in runs} == {2}
    succeeded = sum(sample(registry, "rotaudit_scan_runs_total", outcome="succeeded") or 0 for registry in metrics)
    assert succeeded == len(runs)
    done = [lease for lease in table_items(endpoint, table, "scan_lease") if lease["state"] == "done"]
    assert sorted(lease["run_id"] for lease in done) == expected


class GatedAws(Aws):
    """A replica that hangs mid-run: its second ListSecrets page never arrives until the gate opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blocked = asyncio.Event()
        self.gate = asyncio.Event()

    async def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        if operation == "list_secrets" and params.get("NextToken"):
            self.blocked.set()
            await self.gate.wait()
        return await super().call(service, operation, **params)


async def test_a_holder_killed_mid_run_is_taken_over(endpoint: str, table: str) -> None:
    """A holder dies after writing a batch; another replica takes the expired lease and rewrites the same rows."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    for i in range(30):
        create_secret(sm, f"kill{uuid.uuid4().hex[:6]}-{i}", {key: value})
    tag = f"{key}={value}"
    async with GatedAws(REGION, endpoint_url=endpoint) as gated, Aws(REGION, endpoint_url=endpoint) as plain:
        holder = Scanner(
            gated, table, ScanMetrics(CollectorRegistry()), tag=tag, page_size=26, lease_s=1.0, replica_id="replica-a"
        )
        dying = asyncio.create_task(holder.run_window(WINDOW))
        await eventually(lambda: gated.blocked.is_set() and len(table_items(endpoint, table, "scan")) == 25)
        dying.cancel()  # the process dies: no heartbeat, no release
        with contextlib.suppress(asyncio.CancelledError):
            await dying
        with capture_logs() as logs:
            taker = Scanner(
                plain, table, ScanMetrics(CollectorRegistry()), tag=tag, lease_s=1.0, replica_id="replica-b"
            )
            result = await asyncio.wait_for(taker.run_window(WINDOW), timeout=20)
    assert result is not None
    assert (result.run_id, result.checked) == (compact_time(WINDOW), 30)
    taken = [entry for entry in logs if entry["event"] == "scan.lease_taken_over"]
    assert [entry["previous_holder"] for entry in taken] == ["replica-a"]
    assert [run["run_id"] for run in table_items(endpoint, table, "scan_run")] == [compact_time(WINDOW)]
    assert len(table_items(endpoint, table, "scan")) == 30  # the holder's 25 rows were rewritten, not doubled
    (lease,) = table_items(endpoint, table, "scan_lease")
    assert (lease["state"], lease["holder"], lease["checked"]) == ("done", "replica-b", 30)


async def test_a_graceful_stop_mid_run_hands_the_window_over_at_once(endpoint: str, table: str) -> None:
    """Stop mid-run ends the run and releases the lease: another replica runs the window without waiting it out."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    for i in range(3):
        create_secret(sm, f"stop{uuid.uuid4().hex[:6]}-{i}", {key: value})
    tag, stop = f"{key}={value}", asyncio.Event()
    async with GatedAws(REGION, endpoint_url=endpoint) as gated, Aws(REGION, endpoint_url=endpoint) as plain:
        with capture_logs() as logs:
            holder = Scanner(
                gated,
                table,
                ScanMetrics(CollectorRegistry()),
                tag=tag,
                page_size=2,
                lease_s=300,
                replica_id="replica-a",
            )
            stopping = asyncio.create_task(holder.run_window(WINDOW, stop))
            await asyncio.wait_for(gated.blocked.wait(), timeout=10)
            stop.set()
            assert await asyncio.wait_for(stopping, timeout=10) is None
        taker = Scanner(plain, table, ScanMetrics(CollectorRegistry()), tag=tag, lease_s=300, replica_id="replica-b")
        result = await asyncio.wait_for(taker.run_window(WINDOW), timeout=10)  # well under the 300 s lease
    assert "scan.run_aborted" in [entry["event"] for entry in logs]
    assert result is not None
    assert result.checked == 3


async def test_one_run_covers_several_regions(endpoint: str, home: Aws, table: str) -> None:
    """Targets in two regions: one run, rows saying which region each secret is in."""
    first, second = isolated_region(), isolated_region()
    key, value = unique_tag()
    for region, count in ((first, 2), (second, 1)):
        sm = client("secretsmanager", endpoint, region)
        for i in range(count):
            create_secret(sm, f"multi{uuid.uuid4().hex[:6]}-{i}", {key: value})
    targets = (ScanTarget(regions=(first, second)),)
    result = await Scanner(
        home, table, ScanMetrics(CollectorRegistry()), tag=f"{key}={value}", targets=targets
    ).run_once()
    assert (result.checked, result.outcome) == (3, "succeeded")
    regions = sorted(row["region"] for row in table_items(endpoint, table, "scan"))
    assert regions == sorted([first, first, second])
    (run,) = table_items(endpoint, table, "scan_run")
    assert run["scopes"] == [f"default/{first}", f"default/{second}"]


@pytest.mark.skipif(
    "credentials" not in inspect.signature(Aws).parameters,
    reason="needs Aws(credentials=...) from the aws.py change proposed with the scan",
)
async def test_a_role_target_scans_another_account(endpoint: str, home: Aws, table: str) -> None:
    """A role target is assumed through STS; its secrets' rows carry that account."""
    account = str(random.randrange(10**11, 10**12))
    role_arn = f"arn:aws:iam::{account}:role/rotaudit-scan"
    creds = client("sts", endpoint).assume_role(RoleArn=role_arn, RoleSessionName="test-setup")["Credentials"]
    other = client(
        "secretsmanager",
        endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    create_secret(other, f"xacct{uuid.uuid4().hex[:6]}", {"Managed": "true"})
    result = await Scanner(
        home, table, ScanMetrics(CollectorRegistry()), targets=(ScanTarget(role_arn=role_arn),)
    ).run_once()
    assert result.checked == 1
    (row,) = table_items(endpoint, table, "scan")
    assert (row["account"], row["region"]) == (account, REGION)
    (run,) = table_items(endpoint, table, "scan_run")
    assert run["scopes"] == [f"{account}/{REGION}"]


class ManualClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at


async def test_an_assumed_role_session_is_refreshed_before_it_expires(endpoint: str, table: str) -> None:
    """A scan of another account that outlasts most of its one-hour role session assumes the role again in time.

    Stand-in: moto's STS credentials never expire (AWS-FACTS §7); here AssumeRole's Expiration is one hour after the
    scanner's clock, and each ListSecrets page takes 50 minutes of it.
    """
    clock = ManualClock()
    account = str(random.randrange(10**11, 10**12))
    role_arn = f"arn:aws:iam::{account}:role/rotaudit-scan"
    first, second = isolated_region(), isolated_region()
    creds = client("sts", endpoint).assume_role(RoleArn=role_arn, RoleSessionName="test-setup")["Credentials"]
    keys = {
        k: creds[v] for k, v in (("aws_access_key_id", "AccessKeyId"), ("aws_secret_access_key", "SecretAccessKey"))
    }
    for region in (first, second):
        other = client("secretsmanager", endpoint, region, aws_session_token=creds["SessionToken"], **keys)
        create_secret(other, f"refresh{uuid.uuid4().hex[:6]}", {"Managed": "true"})

    class OneHourSessions(Aws):
        assumed = 0

        async def call_once(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
            result = await super().call_once(service, operation, **params)
            if operation == "assume_role":
                self.assumed += 1
                result["Credentials"]["Expiration"] = clock.now() + timedelta(hours=1)
            return result

    class SlowPages(Aws):
        async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
            result = await super().call(service, operation, **params)
            if operation == "list_secrets":
                clock.at += timedelta(minutes=50)
            return result

    def connect(region: str, credentials: Any) -> Aws:
        return SlowPages(region, endpoint_url=endpoint, services=("secretsmanager",), credentials=credentials)

    targets = (ScanTarget(role_arn=role_arn, regions=(first, second)),)
    async with OneHourSessions(REGION, endpoint_url=endpoint) as home:
        scanner = Scanner(
            home, table, ScanMetrics(CollectorRegistry()), targets=targets, connect=connect, now=clock.now
        )
        result = await scanner.run_once()
    assert (result.outcome, result.checked) == ("succeeded", 2)
    assert home.assumed == 2  # once to start, once more with 10 of its 60 minutes left


async def test_an_unreachable_target_gives_a_partial_run(endpoint: str, home: Aws, table: str) -> None:
    """A scope whose calls fail is named in the run; the other scope's rows are still written."""
    key, value = unique_tag()
    create_secret(client("secretsmanager", endpoint), f"part{uuid.uuid4().hex[:6]}", {key: value})
    dead = f"http://127.0.0.1:{free_port()}"

    def connect(region: str, _: Any) -> Aws:
        return Aws(region, endpoint_url=dead, max_attempts=1, services=("secretsmanager",))

    targets = (ScanTarget(regions=(REGION, "eu-west-1")),)
    metrics = Metrics()
    scanner = Scanner(
        home, table, ScanMetrics(metrics.registry), tag=f"{key}={value}", targets=targets, connect=connect
    )
    with capture_logs() as logs:
        result = await scanner.run_once()
    assert (result.outcome, result.checked, result.failed_scopes) == ("partial", 1, ("default/eu-west-1",))
    assert "scan.target_failed" in [entry["event"] for entry in logs]
    (run,) = table_items(endpoint, table, "scan_run")
    assert (run["outcome"], run["failed_scopes"]) == ("partial", ["default/eu-west-1"])
    assert sample(metrics, "rotaudit_scan_runs_total", outcome="partial") == 1
    assert sample(metrics, "rotaudit_scan_last_success_timestamp_seconds") == 0


async def test_metrics_after_a_run(endpoint: str, home: Aws, table: str) -> None:
    """Run counter, duration, last success, checked and flagged gauges, and one age series per secret."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    old, fresh = f"met{uuid.uuid4().hex[:6]}-old", f"met{uuid.uuid4().hex[:6]}-fresh"
    create_secret(sm, old, {key: value})
    create_secret(sm, fresh, {key: value})
    backdate(old, 40)
    metrics = Metrics()
    await Scanner(home, table, ScanMetrics(metrics.registry, age_gauge=True), tag=f"{key}={value}").run_once()
    assert sample(metrics, "rotaudit_scan_runs_total", outcome="succeeded") == 1
    assert sample(metrics, "rotaudit_scan_duration_seconds_count") == 1
    assert (sample(metrics, "rotaudit_scan_last_success_timestamp_seconds") or 0) > time.time() - 60
    assert (sample(metrics, "rotaudit_secrets_checked"), sample(metrics, "rotaudit_secrets_needing_rotation")) == (2, 1)
    age = sample(metrics, "rotaudit_secret_age_seconds", secret_name=old, account=ACCOUNT, region=REGION)
    assert age == pytest.approx(40 * 86400, rel=0.001)

    quiet = Metrics()
    await Scanner(home, table, ScanMetrics(quiet.registry, age_gauge=False), tag=f"{key}={value}").run_once()
    assert sample(quiet, "rotaudit_secrets_checked") == 2
    assert "rotaudit_secret_age_seconds" not in {m.name for m in quiet.registry.collect()}


def age_samples(metrics: Metrics) -> dict[tuple[str, ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in metrics.registry.collect()
        if family.name == "rotaudit_secret_age_seconds"
        for sample in family.samples
    }


async def test_the_per_secret_age_gauge_is_off_unless_asked_for(endpoint: str, home: Aws, table: str) -> None:
    """Metrics are served without authentication: by default no series is labelled with a secret's name."""
    key, value = unique_tag()
    create_secret(client("secretsmanager", endpoint), f"quiet{uuid.uuid4().hex[:6]}", {key: value})
    metrics = Metrics()
    await Scanner(home, table, ScanMetrics(metrics.registry), tag=f"{key}={value}").run_once()
    assert sample(metrics, "rotaudit_secrets_checked") == 1
    assert age_samples(metrics) == {}


async def test_a_replica_that_skipped_the_window_exports_the_same_ages(endpoint: str, table: str) -> None:
    """The replica that finds the window done mirrors the holder's ages, not just its counts: every replica agrees."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    for i, days in enumerate((40, 3)):
        name = f"mirror{uuid.uuid4().hex[:6]}-{i}"
        create_secret(sm, name, {key: value})
        backdate(name, days)
    runner, skipper = Metrics(), Metrics()
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        for metrics, replica in ((runner, "replica-a"), (skipper, "replica-b")):
            scanner = Scanner(
                aws, table, ScanMetrics(metrics.registry, age_gauge=True), tag=f"{key}={value}", replica_id=replica
            )
            await scanner.run_window(WINDOW)
    assert sample(skipper, "rotaudit_scan_runs_total", outcome="skipped") == 1
    assert len(age_samples(runner)) == 2
    assert age_samples(skipper) == age_samples(runner)


async def test_no_secret_value_reaches_the_table_logs_or_metrics(endpoint: str, home: Aws, table: str) -> None:
    """Secret values stay out of every row, run item, log line and metric a scan produces."""
    key, value = unique_tag()
    sm = client("secretsmanager", endpoint)
    values = [f"s3cr3t-{uuid.uuid4()}" for _ in range(3)]
    for i, secret_value in enumerate(values):
        name = f"val{uuid.uuid4().hex[:6]}-{i}"
        create_secret(sm, name, {key: value}, value=secret_value)
        if i == 0:
            sm.put_secret_value(SecretId=name, SecretString=f"{secret_value}-pending", VersionStages=["AWSPENDING"])
    metrics = Metrics()
    with capture_logs() as logs:
        await Scanner(home, table, ScanMetrics(metrics.registry), tag=f"{key}={value}").run_once()
    from prometheus_client import generate_latest

    produced = raw_table_dump(endpoint, table) + repr(logs) + generate_latest(metrics.registry).decode()
    assert "scan.run_finished" in produced
    assert not [secret_value for secret_value in values if secret_value in produced]


class FakeDynamo:
    """Stand-in: moto never answers BatchWriteItem with UnprocessedItems; AWS does under load."""

    def __init__(self, unprocessed_rounds: int, delay_s: float = 0.0) -> None:
        self.unprocessed_rounds = unprocessed_rounds
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        (requests,) = params["RequestItems"].values()
        self.calls.append(len(requests))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        await asyncio.sleep(self.delay_s)
        self.in_flight -= 1
        if self.unprocessed_rounds > 0:
            self.unprocessed_rounds -= 1
            return {"UnprocessedItems": {"t": requests[: max(1, len(requests) // 2)]}}
        return {"UnprocessedItems": {}}


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


async def test_batch_writer_retries_unprocessed_items() -> None:
    """Unprocessed items are sent again until none is left; every item is written once."""
    fake = FakeDynamo(unprocessed_rounds=2)
    async with BatchWriter(fake, "t", concurrency=1, sleep=no_sleep) as writer:
        for i in range(25):
            await writer.put({"pk": f"p{i}", "sk": "s"})
    assert fake.calls == [25, 12, 6]
    assert writer.written == 25


async def test_batch_writer_sends_a_repeated_key_once() -> None:
    """The same item twice in one batch (a secret reached through two targets) is sent once: AWS would refuse."""
    fake = FakeDynamo(unprocessed_rounds=0)
    async with BatchWriter(fake, "t") as writer:
        for _ in range(2):
            await writer.put({"pk": "p", "sk": "s"})
    assert fake.calls == [1]


async def test_batch_writer_gives_up_after_its_attempts() -> None:
    """Items still unprocessed after max_attempts make the flush raise a transient error."""
    from daemon.errors import TransientAwsError

    fake = FakeDynamo(unprocessed_rounds=100)
    with pytest.raises(TransientAwsError):
        async with BatchWriter(fake, "t", max_attempts=3, sleep=no_sleep) as writer:
            await writer.put({"pk": "p", "sk": "s"})
    assert len(fake.calls) == 3


async def test_batch_writer_bounds_batches_in_flight() -> None:
    """Many items, slow calls: never more than `concurrency` batches in flight, all of 25 but the last."""
    fake = FakeDynamo(unprocessed_rounds=0, delay_s=0.01)
    async with BatchWriter(fake, "t", concurrency=3) as writer:
        for i in range(260):
            await writer.put({"pk": f"p{i}", "sk": "s"})
    assert fake.calls == [25] * 10 + [10]
    assert fake.peak_in_flight == 3


class ScriptedDynamo:
    """Stand-in for DynamoDB answers moto never gives: transaction conflicts between replicas."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[str] = []

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        self.calls.append(operation)
        if self.errors:
            raise self.errors.pop(0)
        return {}


def cancelled(*codes: str) -> Exception:
    from daemon.errors import PermanentAwsError

    error = PermanentAwsError("dynamodb", "transact_write_items", "TransactionCanceledException", "cancelled")
    error.details = {"CancellationReasons": [{"Code": code} for code in codes]}
    return error


SUMMARY = {"run_id": "20300101T100000Z", "outcome": "succeeded", "checked": 1, "flagged": 0, "finished_at": "x"}


async def test_completing_a_window_retries_transaction_conflicts() -> None:
    """A conflict with another replica's attempt on the lease is retried; the run item still lands once."""
    from daemon.scan.lease import WindowLease

    fake = ScriptedDynamo(cancelled("TransactionConflict", "None"), cancelled("TransactionConflict", "None"))
    await WindowLease(fake, "t", holder="me", lease_s=60, sleep=no_sleep).complete(WINDOW, SUMMARY)
    assert fake.calls == ["transact_write_items"] * 3


async def test_completing_a_window_someone_else_holds_raises_lease_lost() -> None:
    """When the lease's condition fails, the run is not recorded and the holder learns it lost the lease."""
    from daemon.errors import LeaseLost
    from daemon.scan.lease import WindowLease

    fake = ScriptedDynamo(cancelled("ConditionalCheckFailed", "None"))
    with pytest.raises(LeaseLost):
        await WindowLease(fake, "t", holder="me", lease_s=60, sleep=no_sleep).complete(WINDOW, SUMMARY)


async def test_a_conflicting_lease_attempt_looks_again() -> None:
    """A TransactionConflictException while taking the lease reads as "busy": the caller naps and retries."""
    from daemon.errors import PermanentAwsError
    from daemon.scan.lease import WindowLease

    conflict = PermanentAwsError("dynamodb", "put_item", "TransactionConflictException", "conflict")
    view = await WindowLease(ScriptedDynamo(conflict), "t", holder="me", lease_s=60).acquire(WINDOW, "r", WINDOW)
    assert (view.acquired, view.state) == (False, "running")
