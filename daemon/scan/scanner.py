"""The age scan: list the tagged secrets of every target, classify each one, audit one row per secret per run.

`ListSecrets` pages (100) with the tag filter, then an exact re-check of key and value on the returned tags
(the API matches prefixes: `Managed` also finds `ManagedBy`). `classify` is pure. Age counts from the newer of
`LastRotatedDate` and the AWSCURRENT version's creation; the list call bounds the version's creation between the
secret's `CreatedDate` and `LastChangedDate`, so `ListSecretVersionIds` is called only for a secret whose verdict
those bounds leave open. Rows go out through `BatchWriteItem`; memory holds one page and a few batches.

On a schedule, a lease per window (`daemon.scan.report.WindowLease`) makes one replica run each window; the run
id is the window's start, so a replica that takes over from a dead holder rewrites the same rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from daemon.aws import Aws
from daemon.config import Config
from daemon.config_values import ScanTarget
from daemon.errors import AwsError, LeaseLost, PermanentAwsError
from daemon.logs import get_logger
from daemon.scan.lease import WindowLease
from daemon.scan.metrics import ScanMetrics
from daemon.scan.report import (
    BatchWriter,
    age_key,
    compact_time,
    row_age_s,
    run_ages,
    run_item,
    run_summary,
    scan_row,
)
from daemon.scan.rules import (
    PENDING_GRACE,
    ScanResult,
    SecretFacts,
    Status,
    as_utc,
    classify,
    needs_version_lookup,
    scopes_for,
    tag_matches,
)
from daemon.scan.targets import Connect, ScopeClients
from daemon.table import to_dynamo, utc_iso
from daemon.timer import Clock, Schedule, Sleep, Timer, nap, parse_schedule, utc_now

VersionDates = tuple[datetime | None, datetime | None]  # AWSCURRENT's and AWSPENDING's creation, where looked up
_GONE = datetime.min.replace(tzinfo=UTC)  # the secret vanished between the list call and the lookup


class RunObserver(Protocol):
    """Follows one run (Security Hub findings, wired in `daemon.features`): each row as written, then the end."""

    async def start(self) -> None: ...
    async def row(self, row: dict[str, Any]) -> None: ...
    async def finish(self) -> None: ...


ObserverFactory = Callable[[str], RunObserver]  # run id -> the run's observer


class Scanner:
    """The scan job: `run(stop)` on the schedule (one run per window across replicas), `run_once()` now."""

    def __init__(
        self,
        aws: Aws,
        table: str,
        metrics: ScanMetrics,
        *,
        schedule: Schedule | str = "rate(1 hour)",
        tag: str = "Managed=true",
        max_age_days: int = 30,
        pending_grace: timedelta = PENDING_GRACE,
        targets: Iterable[ScanTarget] = (),
        jitter_s: float = 0.0,
        lease_s: float = 120.0,
        page_size: int = 100,
        write_concurrency: int = 8,
        lookup_concurrency: int = 8,
        now: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        replica_id: str = "",
        connect: Connect | None = None,
        observers: Sequence[ObserverFactory] = (),
    ) -> None:
        self.aws = aws
        self.observers = tuple(observers)
        self.table = table
        self.schedule = parse_schedule(schedule) if isinstance(schedule, str) else schedule
        self.tag = tag
        self.tag_key, _, self.tag_value = tag.partition("=")
        self.max_age_days = max_age_days
        self.pending_grace = pending_grace
        self.scopes = scopes_for(targets, aws.region)
        self.jitter_s = jitter_s
        self.lease_s = lease_s
        self.page_size = page_size
        self.write_concurrency = write_concurrency
        self.lookup_concurrency = lookup_concurrency
        self.now = now
        self.sleep = sleep
        self.replica_id = replica_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.clients = ScopeClients(aws, connect=connect, clock=now)
        self.metrics = metrics
        self.log = get_logger("scanner")
        self._last_success_s = 0.0

    @classmethod
    def from_config(
        cls, aws: Aws, config: Config, metrics: ScanMetrics, *, table: str = "", **overrides: Any
    ) -> Scanner:
        """The scanner the settings describe; `overrides` are constructor keywords (clock, lease, ...)."""
        settings: dict[str, Any] = {
            "schedule": config.scan_schedule,
            "tag": config.scan_tag,
            "max_age_days": config.max_age_days,
            "pending_grace": timedelta(minutes=config.scan_pending_grace_minutes),
            "targets": config.scan_targets,
            "jitter_s": config.scan_jitter_s,
        }
        return cls(aws, table or config.audit_table, metrics, **(settings | overrides))

    async def run(self, stop: asyncio.Event) -> None:
        """The timer loop: each window runs once across replicas, until `stop`."""

        async def on_fire(window: datetime) -> None:
            await self.run_window(window, stop)

        timer = Timer(self.schedule, clock=self.now, sleep=self.sleep, jitter_s=self.jitter_s, name="scan.timer")
        await timer.run(on_fire, stop)

    async def run_once(self) -> ScanResult:
        """An ad-hoc run now, outside the schedule and its leases (`rotaudit scan --once`). Raises on failure."""
        started = self.now()
        run_id = f"{compact_time(started)}-{secrets.token_hex(3)}"
        try:
            result = await self._execute(run_id, started)
            item = run_item(self._summary(result, "once"))
            await self.aws.call("dynamodb", "put_item", TableName=self.table, Item=to_dynamo(item))
        except Exception as exc:
            self._failed(run_id, exc)
            raise
        self._record(result)
        return result

    async def run_window(self, window: datetime, stop: asyncio.Event | None = None) -> ScanResult | None:
        """Run the window unless another replica has run it or holds it; None when this replica did not run it."""
        stop = stop or asyncio.Event()
        run_id = compact_time(window)
        lease = WindowLease(self.aws, self.table, holder=self.replica_id, lease_s=self.lease_s, sleep=self.sleep)
        held = False
        try:
            while not (view := await lease.acquire(window, run_id, self.now())).acquired:
                if view.state == "done":
                    await self._mirror(view.item)
                    self.log.info("scan.run_skipped", run_id=run_id, reason="done", holder=view.holder)
                    self.metrics.runs.labels("skipped").inc()
                    return None
                wait_s = min(view.until_s - self.now().timestamp(), self.lease_s / 4)
                await nap(self.sleep, max(wait_s, 0.0) + 0.01, stop)
                if stop.is_set():
                    return None
            held = True
            if view.taken_over_from:
                self.log.warning("scan.lease_taken_over", run_id=run_id, previous_holder=view.taken_over_from)
            result = await self._leased_run(window, run_id, lease, stop)
        except Exception as exc:
            self._failed(run_id, exc)
            if held and not isinstance(exc, LeaseLost):
                await self._release(lease, window)  # another replica may run the window now, not in lease_s
            return None
        if result is not None:
            self._record(result)
        return result

    async def _leased_run(
        self, window: datetime, run_id: str, lease: WindowLease, stop: asyncio.Event
    ) -> ScanResult | None:
        scan = asyncio.ensure_future(self._execute(run_id, window))
        beat = asyncio.ensure_future(self._heartbeat(lease, window))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({scan, beat, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (scan, beat, stopper):
                task.cancel()
            await asyncio.gather(scan, beat, stopper, return_exceptions=True)
        if scan.done() and not scan.cancelled():
            result = scan.result()
            await lease.complete(window, self._summary(result, "schedule") | {"window_at": utc_iso(window)})
            return result
        if beat.done() and not beat.cancelled() and (error := beat.exception()) is not None:
            raise error
        self.log.info("scan.run_aborted", run_id=run_id, reason="stopping")
        await self._release(lease, window)
        return None

    @staticmethod
    async def _release(lease: WindowLease, window: datetime) -> None:
        try:
            async with asyncio.timeout(5):
                await lease.release(window)
        except (AwsError, LeaseLost, TimeoutError):
            pass  # the lease expires by itself

    async def _heartbeat(self, lease: WindowLease, window: datetime) -> None:
        while True:
            await self.sleep(self.lease_s / 3)
            await lease.renew(window, self.now())

    async def _execute(self, run_id: str, run_at: datetime) -> ScanResult:
        """List, classify and write every scope's rows; a scope whose AWS calls fail is skipped and named."""
        started = self.now()
        self.log.info("scan.run_started", run_id=run_id, scopes=[s.label for s in self.scopes])
        checked = flagged = 0
        done: list[str] = []
        failed: list[str] = []
        ages: dict[tuple[str, str, str], float] | None = {} if self.metrics.ages is not None else None
        observers = [make(run_id) for make in self.observers]
        for observer in observers:
            await observer.start()
        async with BatchWriter(self.aws, self.table, concurrency=self.write_concurrency) as writer:
            for scope in self.scopes:
                try:
                    async with self.clients.open(scope) as listing:
                        counts = await self._scan_scope(listing, run_id, run_at, writer, ages, observers)
                except AwsError as exc:
                    if exc.service not in ("secretsmanager", "sts"):
                        raise
                    self.log.error("scan.target_failed", run_id=run_id, scope=scope.label, error=str(exc))
                    failed.append(scope.label)
                    continue
                checked, flagged = checked + counts[0], flagged + counts[1]
                done.append(scope.label)
        for observer in observers:
            await observer.finish()
        outcome = "partial" if failed else "succeeded"
        return ScanResult(run_id, outcome, checked, flagged, started, self.now(), tuple(done), tuple(failed), ages)

    async def _scan_scope(
        self,
        listing: Aws,
        run_id: str,
        run_at: datetime,
        writer: BatchWriter,
        ages: dict[tuple[str, str, str], float] | None,
        observers: Sequence[RunObserver] = (),
    ) -> tuple[int, int]:
        checked = flagged = 0
        async for entries in self._pages(listing):
            now = self.now()
            found = [SecretFacts.from_listing(e) for e in entries if tag_matches(e, self.tag_key, self.tag_value)]
            created = await self._lookups(listing, found, now)
            for facts in found:
                current_at, pending_at = created.get(facts.arn, (None, None))
                if current_at is _GONE:
                    continue
                verdict = classify(
                    facts,
                    now,
                    self.max_age_days,
                    current_at,
                    pending_created_at=pending_at,
                    pending_grace=self.pending_grace,
                )
                row = scan_row(facts, verdict, run_id=run_id, run_at=run_at, checked_at=now)
                await writer.put(row)
                for observer in observers:
                    await observer.row(row)
                checked += 1
                flagged += verdict.status is Status.NEEDS_ROTATION
                if ages is not None and (age_s := row_age_s(row)) is not None:
                    ages[age_key(row)] = age_s  # as the row holds it: replicas mirroring the run export the same
        return checked, flagged

    async def _pages(self, listing: Aws) -> AsyncIterator[list[dict[str, Any]]]:
        filters = [{"Key": "tag-key", "Values": [self.tag_key]}, {"Key": "tag-value", "Values": [self.tag_value]}]
        token = ""
        while True:
            extra = {"NextToken": token} if token else {}
            page = await listing.call(
                "secretsmanager", "list_secrets", Filters=filters, MaxResults=self.page_size, **extra
            )
            yield page.get("SecretList", [])
            token = page.get("NextToken") or ""
            if not token:
                return

    async def _lookups(self, listing: Aws, found: list[SecretFacts], now: datetime) -> dict[str, VersionDates]:
        """The AWSCURRENT and AWSPENDING versions' creation, only for secrets whose verdict they can change."""
        slots = asyncio.Semaphore(self.lookup_concurrency)

        async def one(facts: SecretFacts) -> tuple[str, VersionDates]:
            async with slots:
                return facts.arn, await self._version_dates(listing, facts)

        wanted = [f for f in found if needs_version_lookup(f, now, self.max_age_days, self.pending_grace)]
        return dict(await asyncio.gather(*(one(f) for f in wanted)))

    async def _version_dates(self, listing: Aws, facts: SecretFacts) -> VersionDates:
        """(AWSCURRENT's creation, AWSPENDING's creation); (_GONE, None) when the secret has vanished."""
        token = ""
        dates: dict[str, datetime | None] = {}
        wanted = {v for v in (facts.current_version, facts.pending_version) if v}
        try:
            while True:
                extra = {"NextToken": token} if token else {}
                page = await listing.call(
                    "secretsmanager", "list_secret_version_ids", SecretId=facts.arn, MaxResults=100, **extra
                )
                for version in page.get("Versions", []):
                    if version.get("VersionId") in wanted:
                        dates[str(version["VersionId"])] = as_utc(version.get("CreatedDate"))
                token = page.get("NextToken") or ""
                if not token or wanted <= set(dates):
                    break
        except AwsError as exc:
            if isinstance(exc, PermanentAwsError) and exc.code == "ResourceNotFoundException":
                return _GONE, None
            # Judge on the list call's bounds: the earlier one, so a doubtful secret is flagged, not passed.
            self.log.warning("scan.lookup_failed", secret_arn=facts.arn, error=str(exc))
            return None, None
        return dates.get(facts.current_version or ""), dates.get(facts.pending_version or "")

    def _summary(self, result: ScanResult, trigger: str) -> dict[str, Any]:
        return run_summary(
            result, trigger=trigger, tag=self.tag, max_age_days=self.max_age_days, replica=self.replica_id
        )

    def _record(self, result: ScanResult) -> None:
        duration_s = (result.finished_at - result.started_at).total_seconds()
        self.metrics.runs.labels(result.outcome).inc()
        self.metrics.duration.observe(duration_s)
        self.metrics.checked.set(result.checked)
        self.metrics.needing.set(result.flagged)
        if result.outcome == "succeeded":
            self._last_success_s = max(self._last_success_s, result.finished_at.timestamp())
            self.metrics.last_success.set(self._last_success_s)
        if self.metrics.ages is not None and result.ages is not None:
            self.metrics.ages.publish(result.ages)
        self.log.info(
            "scan.run_finished",
            run_id=result.run_id,
            outcome=result.outcome,
            checked=result.checked,
            flagged=result.flagged,
            duration_s=round(duration_s, 3),
            failed_scopes=list(result.failed_scopes),
        )

    async def _mirror(self, lease_item: dict[str, Any]) -> None:
        """Another replica ran the window: show its figures here too, so every replica's gauges agree.

        The counts come with the lease item; the per-secret ages (when that gauge is on) from the run's rows.
        """
        if "checked" not in lease_item or "finished_at" not in lease_item:
            return
        if self.metrics.ages is not None and lease_item.get("run_id"):
            try:
                self.metrics.ages.publish(await run_ages(self.aws, self.table, str(lease_item["run_id"])))
            except AwsError as exc:
                self.log.warning("scan.mirror_failed", run_id=lease_item["run_id"], error=str(exc))
        self.metrics.checked.set(float(lease_item["checked"]))
        self.metrics.needing.set(float(lease_item["flagged"]))
        if lease_item.get("outcome") == "succeeded":
            finished = datetime.strptime(str(lease_item["finished_at"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            self._last_success_s = max(self._last_success_s, finished.timestamp())
            self.metrics.last_success.set(self._last_success_s)

    def _failed(self, run_id: str, exc: BaseException) -> None:
        self.metrics.runs.labels("failed").inc()
        lost = isinstance(exc, LeaseLost)
        self.log.error(
            "scan.lease_lost" if lost else "scan.run_failed",
            run_id=run_id,
            error=str(exc),
            error_type=type(exc).__name__,
        )


async def scan_secrets(aws: Aws, table: str, *, metrics: ScanMetrics | None = None, **options: Any) -> ScanResult:
    """One ad-hoc scan with a fresh registry: the entry point `make bench` times against the seed's handler."""
    return await Scanner(aws, table, metrics or ScanMetrics(CollectorRegistry()), **options).run_once()
