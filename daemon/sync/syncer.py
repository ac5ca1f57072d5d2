"""Keep derived secrets in sync with their sources: one pair's read/render/compare/write, the hook, the reconcile.

A pair's target is written only when its rendered value differs from the target's AWSCURRENT, with a
`ClientRequestToken` derived from ids — the pair, the source's version, the target's current version — and a
fingerprint of the rendering without the password (`daemon.sync.render`), so a retried write never makes a second
version. The write is conditional across replicas: the version goes in under a label of ours, and AWSCURRENT moves
onto it only while the source still has the version this sync read and the target's AWSCURRENT is still where it
was (`daemon.sync.secrets`). After an update, ECS services named by the pair get a forced new deployment.

Triggers: `on_event` (a processor hook: `RotationSucceeded` of a source, or `Secret Label Updated` moving
AWSCURRENT on it), `run` (the reconcile job, every `interval_s`), `run_once` (by hand). Every outcome is logged and
counted; event-triggered and manual syncs are audited whatever their outcome, the reconcile audits only updates
and errors. Bad input is also alerted on SNS, once per distinct problem. No value, and no digest of a password,
ever leaves the sync feature except in the target's `PutSecretValue` (`daemon.sync.secrets`): logs, audit items,
alerts and metrics carry ids, names, reasons and field names only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from daemon.audit import Outcome
from daemon.aws import Aws
from daemon.config import Config
from daemon.config_values import SyncPair
from daemon.errors import AwsError, TransientAwsError
from daemon.events import RotationEvent, parse_secret_arn
from daemon.logs import get_logger
from daemon.sync.metrics import SyncMetrics
from daemon.sync.render import RenderError, render
from daemon.sync.secrets import CURRENT, PairSecrets, SyncFailed, code_of, ids_of
from daemon.table import secret_pk, to_dynamo, utc_iso
from daemon.timer import Clock, every, utc_now

_TOKEN_NAMESPACE = uuid.UUID("6f0b7a52-3c1e-4d3a-9a57-2f8e5c1d0b44")
WRITE_ATTEMPTS = 3  # fresh read-and-write rounds when another writer moves the source or the target meanwhile


class SyncOutcome(StrEnum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"


class Trigger(StrEnum):
    EVENT = "event"
    RECONCILE = "reconcile"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one sync of one pair did: ids, names and a reason, never a value."""

    pair: str
    outcome: SyncOutcome
    trigger: Trigger
    reason: str = ""  # why it failed: a RenderReason, source_not_found, target_not_found, aws_error, ...
    detail: str = ""  # names fields or an AWS operation and error code, never values
    source_arn: str = ""
    source_version_id: str = ""
    target_arn: str = ""
    target_name: str = ""
    target_version_id: str = ""  # the new version after an update, else the current one
    previous_version_id: str = ""
    redeployed: tuple[str, ...] = ()
    redeploy_failed: tuple[str, ...] = ()


def is_trigger(event: RotationEvent) -> bool:
    """True for events after which a source's AWSCURRENT holds a new value."""
    if event.event_name == "RotationSucceeded":
        return True
    return event.kind == "label" and CURRENT in (event.label or "").split(",")


class Syncer:
    """Syncs the configured pairs, counting on the `SyncMetrics` it is given."""

    def __init__(
        self,
        aws: Aws,
        pairs: Iterable[SyncPair],
        *,
        audit_table: str,
        metrics: SyncMetrics,
        topic_arn: str = "",
        interval_s: float = 900.0,
        clock: Clock = utc_now,
    ) -> None:
        self.aws = aws
        self.secrets = PairSecrets(aws)
        self.pairs = {pair.name: pair for pair in pairs}
        self.audit_table = audit_table
        self.metrics = metrics
        self.topic_arn = topic_arn
        self.interval_s = interval_s
        self.clock = clock
        self.log = get_logger("sync")
        self._locks: dict[str, asyncio.Lock] = {}
        self._alerted: dict[str, tuple[str, ...]] = {}  # pair -> the problem last alerted, to alert once
        for name in self.pairs:  # every pair's series at 0 from start-up
            for outcome in SyncOutcome:
                metrics.syncs.labels(name, outcome.value)

    @classmethod
    def from_config(cls, aws: Aws, config: Config, metrics: SyncMetrics) -> Syncer:
        return cls(
            aws,
            config.sync_pairs,
            audit_table=config.audit_table,
            metrics=metrics,
            topic_arn=config.sns_topic_arn,
            interval_s=config.sync_interval_minutes * 60.0,
        )

    async def on_event(self, event: RotationEvent, outcome: Outcome) -> None:
        """Processor hook: sync every pair whose source just got a new AWSCURRENT. Raises TransientAwsError."""
        del outcome  # a duplicate delivery syncs again: the compare makes that a no-op
        if not is_trigger(event):
            return
        for pair in self.pairs.values():
            if self._matches(pair.source, event):
                await self.sync_pair(pair, Trigger.EVENT, event=event)

    async def run(self, stop: asyncio.Event) -> None:
        """The reconcile job: every pair now, then every `interval_s`, until `stop` is set."""
        await every(self.interval_s, stop, lambda: self._reconcile(stop))

    async def run_once(self, pair: str | None = None, *, trigger: Trigger = Trigger.MANUAL) -> list[SyncResult]:
        """Sync one pair by name, or all; transient AWS failures become `error` results. Unknown name: KeyError."""
        pairs = [self.pairs[pair]] if pair is not None else list(self.pairs.values())
        results = []
        for one in pairs:
            try:
                results.append(await self.sync_pair(one, trigger))
            except TransientAwsError as exc:
                results.append(SyncResult(one.name, SyncOutcome.ERROR, trigger, "aws_unavailable", code_of(exc)))
        return results

    async def _reconcile(self, stop: asyncio.Event) -> None:
        counts = dict.fromkeys(SyncOutcome, 0)
        for pair in self.pairs:
            if stop.is_set():
                break
            for result in await self.run_once(pair, trigger=Trigger.RECONCILE):
                counts[result.outcome] += 1
        self.log.info("sync.reconcile_finished", **{outcome.value: n for outcome, n in counts.items()})

    async def sync_pair(self, pair: SyncPair, trigger: Trigger, *, event: RotationEvent | None = None) -> SyncResult:
        """Render, compare, write on a difference, redeploy, then log, count, audit and alert.

        Raises TransientAwsError when AWS stays unavailable (nothing is audited then).
        """
        lock = self._locks.setdefault(pair.name, asyncio.Lock())
        async with lock:  # the hook and the reconcile must not interleave writes to one target
            try:
                result = await self._sync(pair, trigger)
            except SyncFailed as failed:
                result = SyncResult(pair.name, SyncOutcome.ERROR, trigger, failed.reason, failed.detail, **failed.ids)
            except TransientAwsError as exc:
                self.metrics.syncs.labels(pair.name, SyncOutcome.ERROR.value).inc()
                self.log.warning(
                    "sync.pair_failed", pair=pair.name, trigger=trigger.value, transient=True, error=code_of(exc)
                )
                raise
        await self._report(pair, result, event)
        return result

    async def _sync(self, pair: SyncPair, trigger: Trigger) -> SyncResult:
        """Sync from fresh reads; start again (bounded) when the source or the target moves during the write."""
        for _ in range(WRITE_ATTEMPTS):
            result = await self._sync_once(pair, trigger)
            if result is not None:
                return result
            self.log.info("sync.write_superseded", pair=pair.name, trigger=trigger.value)
        raise SyncFailed("write_conflict", f"the source or the target moved during {WRITE_ATTEMPTS} attempts")

    async def _sync_once(self, pair: SyncPair, trigger: Trigger) -> SyncResult | None:
        """One read/render/compare/write; None when the write found the source or the target moved meanwhile."""
        source = await self.secrets.read_source(pair)
        target = await self.secrets.read_target(pair, source)
        ids = ids_of(source, target)
        settings = {"host": pair.host, "port": pair.port, "dbname": pair.dbname, "username": pair.username}
        rendered = render(
            source.value, target.value, template=pair.template, settings={**settings, "sslmode": pair.sslmode}
        )
        if isinstance(rendered, RenderError):
            raise SyncFailed(rendered.reason.value, rendered.detail, ids)
        if not rendered.changed:
            return SyncResult(pair.name, SyncOutcome.UNCHANGED, trigger, **ids)
        basis = (pair.name, source.version_id, target.version_id, rendered.fingerprint)
        token = str(uuid.uuid5(_TOKEN_NAMESPACE, "\x1f".join(basis)))
        if not await self.secrets.write(source, target, token, rendered.value, ids):
            return None
        redeployed, failed = await self._redeploy(pair)
        return SyncResult(
            pair.name,
            SyncOutcome.UPDATED,
            trigger,
            previous_version_id=target.version_id,
            redeployed=redeployed,
            redeploy_failed=failed,
            **(ids | {"target_version_id": token}),
        )

    async def _redeploy(self, pair: SyncPair) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Force a new deployment of the pair's ECS services so running tasks read the new value."""
        done: list[str] = []
        failed: list[str] = []
        for ref in pair.ecs_services:
            cluster, _, service = ref.rpartition("/")
            try:
                await self._update_service(cluster, service)
            except AwsError as exc:
                failed.append(ref)
                self.log.warning("sync.redeploy_failed", pair=pair.name, service=ref, error=code_of(exc))
            else:
                done.append(ref)
                self.log.info("sync.redeploy_requested", pair=pair.name, service=ref)
        return tuple(done), tuple(failed)

    async def _update_service(self, cluster: str, service: str) -> None:
        """ECS UpdateService(forceNewDeployment): one attempt (a retry after a lost answer would deploy twice)."""
        await self.aws.call_once("ecs", "update_service", cluster=cluster, service=service, forceNewDeployment=True)

    async def _report(self, pair: SyncPair, result: SyncResult, event: RotationEvent | None) -> None:
        self.metrics.syncs.labels(pair.name, result.outcome.value).inc()
        fields = _fields(result, event)
        if result.outcome is SyncOutcome.ERROR:
            self.log.error("sync.pair_failed", **fields)
        else:
            self.metrics.last_success.labels(pair.name).set(self.clock().timestamp())
            self.log.info("sync.pair_synced", **fields)
        if result.outcome is not SyncOutcome.UNCHANGED or result.trigger is not Trigger.RECONCILE:
            await self._audit(pair, fields)
        problem = (result.reason, result.detail, result.source_version_id, result.target_version_id)
        if result.outcome is SyncOutcome.ERROR and self._alerted.get(pair.name) != problem:
            self._alerted[pair.name] = problem
            await self._alert(pair, f"sync of {pair.name} failed: {result.reason}", fields)
        elif result.outcome is not SyncOutcome.ERROR:
            self._alerted.pop(pair.name, None)
        if result.redeploy_failed:
            await self._alert(pair, f"sync of {pair.name}: ECS redeploy failed", fields)

    async def _audit(self, pair: SyncPair, fields: dict[str, Any]) -> None:
        """One item in the target's history partition (on the configured id when the target was not found)."""
        now = self.clock()
        target = str(fields.get("target_arn") or pair.target)
        item = {
            "pk": secret_pk(target),
            "sk": f"{utc_iso(now)}#sync#{pair.name}#{uuid.uuid4().hex[:12]}",
            "kind": "sync",
            "secret_arn": target,
            "secret_name": fields.get("target_name") or _name_of(pair.target),
            "status": fields["outcome"],
            "checked_at": utc_iso(now),
            **{key: value for key, value in fields.items() if value not in ("", [], None)},
        }
        try:
            await self.aws.call("dynamodb", "put_item", TableName=self.audit_table, Item=to_dynamo(item))
        except AwsError as exc:
            self.log.warning("sync.audit_failed", pair=pair.name, error=code_of(exc))

    async def _alert(self, pair: SyncPair, subject: str, fields: dict[str, Any]) -> None:
        if not self.topic_arn:
            return
        message = {"kind": "rotaudit.sync", "source": pair.source, "target": pair.target, **fields}
        try:
            await self.aws.call(
                "sns",
                "publish",
                TopicArn=self.topic_arn,
                Subject=("rotaudit: " + subject)[:100],
                Message=json.dumps(message, sort_keys=True),
            )
        except AwsError as exc:
            self.log.warning("sync.alert_failed", pair=pair.name, error=code_of(exc))

    def _matches(self, source: str, event: RotationEvent) -> bool:
        if source.startswith("arn:"):
            arn = event.secret_arn
            return source == arn or (len(arn) == len(source) + 7 and arn.startswith(source + "-"))
        return source == event.secret_name and event.region in (None, self.aws.region)


def _fields(result: SyncResult, event: RotationEvent | None) -> dict[str, Any]:
    """What the log, the audit item and the alert say about a sync: ids and names only."""
    fields = {key: list(v) if isinstance(v, tuple) else str(v) for key, v in asdict(result).items()}
    if event is not None:
        fields |= {"event_name": event.event_name, "rotation_id": event.rotation_id, "event_id": event.event_id}
    return fields


def _name_of(secret: str) -> str:
    parsed = parse_secret_arn(secret)
    return parsed[2] if parsed else secret
