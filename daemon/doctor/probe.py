"""`--probe`: one synthetic event through EventBridge (`PutEvents`), seen arriving by the daemon's record of it.

The probe has its own source and rule (daemon/probe.py says why: AWS refuses `aws.*` sources in `PutEvents`). Doctor
first checks the probe rule as it checks the rotation rules (enabled, targeting the queue, admitted by the queue
policy), then puts the event and waits for the daemon to record it in the audit table (`probe#<id>`). Doctor does
not receive from the queue itself: a running daemon would race it for the message, and every receive of a real
message counts toward its redrive to the DLQ. So a probe that is not recorded means either the event did not arrive
or no daemon is consuming the queue; the failure says both.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from daemon.aws import Aws
from daemon.doctor.policy import Verdict, delivery_verdict
from daemon.doctor.resources import PROVISION_FIX, Found, call_failed
from daemon.doctor.result import Check, failed, passed, skipped
from daemon.errors import AwsError
from daemon.probe import probe_entry, probe_key, probe_rule_name
from daemon.table import to_dynamo
from daemon.timer import utc_now

POLL_S = 1.0


async def check_probe(aws: Aws, found: Found, *, prefix: str, table: str, timeout_s: float) -> list[Check]:
    """probe.rule (exists, enabled, targets the queue, admitted) and probe.delivered (the daemon recorded it)."""
    if not found.queue_arn or not table:
        return [skipped("probe", "no queue or table to probe (see queue.exists, table.active)")]
    name = probe_rule_name(prefix)
    try:
        rule = await aws.call("events", "describe_rule", Name=name)
        targets = await aws.call("events", "list_targets_by_rule", Rule=name)
    except AwsError as exc:
        return [call_failed("probe.rule", exc, f"rule {name}", f"create it: {PROVISION_FIX}")]
    arns = [str(t.get("Arn", "")) for t in targets.get("Targets", [])]
    if rule.get("State") != "ENABLED":
        return [failed("probe.rule", f"rule {name} is {rule.get('State')}", f"aws events enable-rule --name {name}")]
    if found.queue_arn not in arns:
        return [
            failed("probe.rule", f"rule {name} targets {', '.join(arns) or 'nothing'}, not the queue", PROVISION_FIX)
        ]
    if delivery_verdict(found.queue_policy, found.queue_arn, str(rule["Arn"])) is not Verdict.ALLOWED:
        fix = f"admit rule {name} in the queue policy (aws:SourceArn), as for the rotation rules ({PROVISION_FIX})"
        return [failed("probe.rule", "the queue policy does not let EventBridge deliver the probe", fix)]
    checks = [passed("probe.rule", f"{name} -> the queue")]
    return [*checks, await _send_and_wait(aws, table, timeout_s)]


async def _send_and_wait(aws: Aws, table: str, timeout_s: float) -> Check:
    probe_id = uuid.uuid4().hex
    try:
        sent = await aws.call("events", "put_events", Entries=[probe_entry(probe_id, utc_now())])
    except AwsError as exc:
        return call_failed("probe.delivered", exc, "PutEvents", "check events:PutEvents on the default bus")
    if sent.get("FailedEntryCount"):
        entry = sent.get("Entries", [{}])[0]
        return failed("probe.delivered", f"PutEvents refused the probe: {entry.get('ErrorCode')}", PROVISION_FIX)
    started = time.monotonic()
    while True:
        try:
            got = await aws.call("dynamodb", "get_item", TableName=table, Key=to_dynamo(probe_key(probe_id)))
        except AwsError as exc:
            return call_failed("probe.delivered", exc, "reading the probe's record", "grant dynamodb:GetItem")
        waited_s = time.monotonic() - started
        if "Item" in got:
            return passed("probe.delivered", f"probe {probe_id} recorded by the daemon after {waited_s:.1f} s")
        if waited_s >= timeout_s:
            detail = f"probe {probe_id} not recorded within {timeout_s:g} s"
            fix = (
                "is the daemon running and consuming the queue? If it is, the event did not arrive: check the "
                "queue's DLQ (rotaudit dlq) and the rule's FailedInvocations metric"
            )
            return failed("probe.delivered", detail, fix)
        await asyncio.sleep(POLL_S)
