"""The resources the daemon runs on: the queue and its DLQ, the audit table (status, keys, indexes, TTL), the topic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daemon.aws import Aws, iam_action
from daemon.doctor.result import Check, failed, passed, skipped, warned
from daemon.errors import AwsError
from daemon.table import TTL_ATTRIBUTE, table_definition

PROVISION_FIX = "run `terraform apply` (or `rotaudit provision`)"
_MISSING = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ResourceNotFoundException",
        "NotFound",
        "NotFoundException",
    }
)
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "AuthorizationError", "AuthorizationErrorException"})


@dataclass
class Found:
    """What the resource checks learnt that later checks need (ARNs); empty where a resource was not found."""

    queue_arn: str = ""
    dlq_arn: str = ""
    dlq_url: str = ""
    queue_policy: str | None = None
    table_arn: str = ""


def call_failed(name: str, exc: AwsError, what: str, fix: str) -> Check:
    """A check failed by an AWS call: a missing resource says `fix`, a denied call names the permission doctor needs."""
    if exc.code in _DENIED:
        action = iam_action(exc.service, exc.operation)
        return failed(name, f"{what}: {exc.code}", f"grant {action} to the caller running doctor")
    if exc.code in _MISSING:
        return failed(name, f"{what}: not found ({exc.code})", fix)
    return failed(name, f"{what}: {exc}", fix)


async def _queue_attributes(aws: Aws, url: str) -> dict[str, str]:
    described = await aws.call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["All"])
    return {str(k): str(v) for k, v in described.get("Attributes", {}).items()}


async def check_queues(aws: Aws, queue_url: str, dlq_url: str, found: Found) -> list[Check]:
    """queue.exists, dlq.exists and queue.redrive (the queue dead-letters to the DLQ)."""
    if not queue_url:
        fix = "set ROTAUDIT_QUEUE_URL (terraform output queue_url)"
        return [failed("queue.exists", "ROTAUDIT_QUEUE_URL is not set", fix)]
    try:
        attributes = await _queue_attributes(aws, queue_url)
    except AwsError as exc:
        fix = f"set ROTAUDIT_QUEUE_URL to the queue's URL (terraform output queue_url), or {PROVISION_FIX}"
        return [call_failed("queue.exists", exc, queue_url, fix)]
    found.queue_arn = attributes.get("QueueArn", "")
    found.queue_policy = attributes.get("Policy")
    checks = [passed("queue.exists", found.queue_arn)]
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    redrive_target = str(redrive.get("deadLetterTargetArn", ""))
    if dlq_url:
        try:
            dlq = await _queue_attributes(aws, dlq_url)
        except AwsError as exc:
            fix = f"set ROTAUDIT_DLQ_URL to the DLQ's URL (terraform output dlq_url), or {PROVISION_FIX}"
            return [*checks, call_failed("dlq.exists", exc, dlq_url, fix)]
        found.dlq_arn, found.dlq_url = dlq.get("QueueArn", ""), dlq_url
        checks.append(passed("dlq.exists", found.dlq_arn))
    elif redrive_target:
        found.dlq_arn = redrive_target
        checks.append(passed("dlq.exists", f"{redrive_target} (from the queue's redrive policy)"))
    if not redrive_target:
        checks.append(failed("queue.redrive", "the queue has no redrive policy: a poison message loops", PROVISION_FIX))
    elif found.dlq_arn and redrive_target != found.dlq_arn:
        detail = f"the queue dead-letters to {redrive_target}, not to ROTAUDIT_DLQ_URL's {found.dlq_arn}"
        checks.append(failed("queue.redrive", detail, "point ROTAUDIT_DLQ_URL at the queue's DLQ"))
    else:
        checks.append(passed("queue.redrive", f"to {redrive_target} after {redrive.get('maxReceiveCount')} receives"))
    return checks


def _index_problems(described: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What the table lacks against `table_definition`: its key schema, each index's keys and ACTIVE status."""
    problems = []
    if described.get("KeySchema") != wanted["KeySchema"]:
        problems.append("key schema is not pk (HASH) + sk (RANGE)")
    have = {index["IndexName"]: index for index in described.get("GlobalSecondaryIndexes", [])}
    for index in wanted["GlobalSecondaryIndexes"]:
        name = index["IndexName"]
        if name not in have:
            problems.append(f"index {name} missing")
        elif have[name].get("KeySchema") != index["KeySchema"]:
            problems.append(f"index {name} has other keys")
        elif have[name].get("IndexStatus", "ACTIVE") != "ACTIVE":
            problems.append(f"index {name} is {have[name]['IndexStatus']}")
        elif have[name].get("Projection", {}).get("ProjectionType") != "ALL":
            problems.append(f"index {name} does not project ALL")
    return problems


async def check_table(aws: Aws, table: str, *, retention: bool, found: Found) -> list[Check]:
    """table.active, table.indexes (as daemon.table.table_definition has them) and table.ttl."""
    if not table:
        return [failed("table.active", "ROTAUDIT_AUDIT_TABLE is not set", "set it (terraform output table_name)")]
    try:
        described = (await aws.call("dynamodb", "describe_table", TableName=table))["Table"]
    except AwsError as exc:
        fix = f"set ROTAUDIT_AUDIT_TABLE (terraform output table_name), or {PROVISION_FIX}"
        return [call_failed("table.active", exc, table, fix)]
    found.table_arn = str(described.get("TableArn", ""))
    status = described.get("TableStatus")
    checks = [
        passed("table.active", table)
        if status == "ACTIVE"
        else failed("table.active", f"{table} is {status}", "wait for the table to become ACTIVE, then rerun")
    ]
    problems = _index_problems(described, table_definition(table))
    if problems:
        fix = f"recreate the table with the indexes in daemon/table.py ({PROVISION_FIX}); history and report need them"
        checks.append(failed("table.indexes", "; ".join(problems), fix))
    else:
        names = ", ".join(i["IndexName"] for i in table_definition(table)["GlobalSecondaryIndexes"])
        checks.append(passed("table.indexes", names))
    checks.append(await _check_ttl(aws, table, retention=retention))
    return checks


async def _check_ttl(aws: Aws, table: str, *, retention: bool) -> Check:
    try:
        ttl = (await aws.call("dynamodb", "describe_time_to_live", TableName=table)).get("TimeToLiveDescription", {})
    except AwsError as exc:
        return call_failed("table.ttl", exc, table, PROVISION_FIX)
    on = ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName") == TTL_ATTRIBUTE
    if on:
        return passed("table.ttl", f"on {TTL_ATTRIBUTE}")
    if not retention:
        return skipped("table.ttl", "remediation is off: no item carries a retention")
    fix = (
        f"aws dynamodb update-time-to-live --table-name {table} "
        f"--time-to-live-specification Enabled=true,AttributeName={TTL_ATTRIBUTE}"
    )
    return warned("table.ttl", f"TTL is not on {TTL_ATTRIBUTE}: remediation's claims and markers never expire", fix)


async def check_topic(aws: Aws, topic_arn: str) -> Check:
    """topic.reachable: the notification topic answers GetTopicAttributes."""
    if not topic_arn:
        return skipped("topic.reachable", "ROTAUDIT_SNS_TOPIC_ARN is not set: no notifications are sent")
    try:
        await aws.call("sns", "get_topic_attributes", TopicArn=topic_arn)
    except AwsError as exc:
        fix = f"set ROTAUDIT_SNS_TOPIC_ARN to the topic (terraform output topic_arn), or {PROVISION_FIX}"
        return call_failed("topic.reachable", exc, topic_arn, fix)
    return passed("topic.reachable", topic_arn)
