"""`rotaudit provision`: create, idempotently, the AWS resources the daemon runs on.

The rotation-event queue with its DLQ (redrive), the audit table, the SNS topic, and EventBridge rules for
rotation events (both CloudTrail detail-types), `Secret Label Updated` and `rotaudit doctor --probe`'s probe
(daemon/probe.py), each targeting the queue through a queue policy that admits only those rules.
`deploy/terraform` describes the same shapes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from daemon.aws import Aws
from daemon.errors import PermanentAwsError
from daemon.events import API_CALL_EVENTS, ROTATION_EVENTS
from daemon.probe import probe_pattern, probe_rule_name
from daemon.table import TTL_ATTRIBUTE, table_definition
from daemon.timer import Sleep

MAX_RECEIVE_COUNT = 5
RETENTION_S = 14 * 24 * 3600
QUEUE_VISIBILITY_S = 60
TOPIC_KMS_KEY = "alias/aws/sns"
PITR_WAIT_S = 300.0  # how long provision waits for continuous backups to become available


def rotation_event_pattern() -> dict[str, Any]:
    """Secrets Manager rotation outcomes arrive as service events; API calls as API-call events: match both."""
    return {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail", "AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": sorted(ROTATION_EVENTS | API_CALL_EVENTS),
        },
    }


def label_event_pattern() -> dict[str, Any]:
    return {"source": ["aws.secretsmanager"], "detail-type": ["Secret Label Updated"]}


async def _queue(aws: Aws, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    try:
        url = str((await aws.call("sqs", "create_queue", QueueName=name, Attributes=attributes))["QueueUrl"])
    except PermanentAwsError as exc:
        # AWS refuses CreateQueue for an existing queue with other attributes: update it instead.
        if exc.code not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = str((await aws.call("sqs", "get_queue_url", QueueName=name))["QueueUrl"])
    await aws.call("sqs", "set_queue_attributes", QueueUrl=url, Attributes=attributes)
    described = await aws.call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn"])
    return url, str(described["Attributes"]["QueueArn"])


async def _table(aws: Aws, name: str, sleep: Sleep) -> str:
    try:
        await aws.call("dynamodb", "create_table", **table_definition(name))
    except PermanentAwsError as exc:
        if exc.code != "ResourceInUseException":
            raise
    waiter = aws.client("dynamodb").get_waiter("table_exists")
    await waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = await aws.call("dynamodb", "describe_time_to_live", TableName=name)
    if ttl.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        await aws.call(
            "dynamodb",
            "update_time_to_live",
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    await _enable_point_in_time_recovery(aws, name, sleep)
    return name


async def _enable_point_in_time_recovery(aws: Aws, name: str, sleep: Sleep) -> None:
    """UpdateContinuousBackups, waiting out `ContinuousBackupsUnavailableException`: AWS can refuse it for a while
    right after CreateTable, while it turns continuous backups on (AWS-FACTS §5). Bounded by PITR_WAIT_S."""
    waited_s, delay_s = 0.0, 1.0
    while True:
        try:
            await aws.call(
                "dynamodb",
                "update_continuous_backups",
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            return
        except PermanentAwsError as exc:
            if exc.code != "ContinuousBackupsUnavailableException" or waited_s >= PITR_WAIT_S:
                raise
        await sleep(delay_s)
        waited_s += delay_s
        delay_s = min(delay_s * 2, 15.0)


async def _rule(aws: Aws, name: str, pattern: dict[str, Any], queue_arn: str, dlq_arn: str, description: str) -> str:
    created = await aws.call(
        "events",
        "put_rule",
        Name=name,
        EventPattern=json.dumps(pattern, separators=(",", ":")),
        State="ENABLED",
        Description=description,
    )
    # An event EventBridge cannot deliver lands in the DLQ, where rotaudit reports it as eventbridge_undelivered.
    target = {"Id": "rotaudit-queue", "Arn": queue_arn, "DeadLetterConfig": {"Arn": dlq_arn}}
    await aws.call("events", "put_targets", Rule=name, Targets=[target])
    return str(created["RuleArn"])


def queue_policy(
    queue_arn: str, rule_arns: list[str], sid: str = "AllowRotationEventRules", senders: list[str] | None = None
) -> dict[str, Any]:
    """Only our EventBridge rules may send to the queue (and, with their undeliverable events, to the DLQ).

    The Deny makes that hold for principals of this account too, whose own IAM policies may allow
    `sqs:SendMessage` on any queue: without it, anyone so allowed could inject a forged RotationFailed. EventBridge
    deliveries carry the rule as `aws:SourceArn`; `senders` (IAM principal ARNs: the daemon's role, which
    dead-letters rejected messages, and whoever replays the DLQ) are let through by `aws:PrincipalArn`, which a
    service principal's request does not carry. IAM's condition operators reference: "If the policy condition
    requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not present,
    the condition is true" - so the Deny's `ArnNotLike aws:PrincipalArn` holds for any sender without one, and only
    `aws:SourceArn` lets EventBridge through.
    """
    unless: dict[str, Any] = {"ArnNotEquals": {"aws:SourceArn": rule_arns}}
    if senders:
        unless["ArnNotLike"] = {"aws:PrincipalArn": senders}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            },
            {
                "Sid": "DenyEveryOtherSender",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": unless,
            },
        ],
    }


def principal_of(caller_arn: str) -> str:
    """The IAM principal ARN that `aws:PrincipalArn` names for a caller: an assumed role's session is its role."""
    partition_and_rest = caller_arn.split(":", 5)
    if (
        len(partition_and_rest) == 6
        and partition_and_rest[2] == "sts"
        and partition_and_rest[5].startswith("assumed-role/")
    ):
        _, partition, _, _, account, resource = partition_and_rest
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return caller_arn


async def provision(aws: Aws, prefix: str, *, sleep: Sleep = asyncio.sleep) -> dict[str, str]:
    """Create (or bring up to date) every resource; return their names, URLs and ARNs. `sleep` paces retries."""
    dlq_url, dlq_arn = await _queue(aws, f"{prefix}-events-dlq", {"MessageRetentionPeriod": str(RETENTION_S)})
    queue_url, queue_arn = await _queue(
        aws,
        f"{prefix}-events",
        {
            "MessageRetentionPeriod": str(RETENTION_S),
            "VisibilityTimeout": str(QUEUE_VISIBILITY_S),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
        },
    )
    table = await _table(aws, f"{prefix}-audit", sleep)
    topic_arn = str((await aws.call("sns", "create_topic", Name=f"{prefix}-notifications"))["TopicArn"])
    # Encrypted at rest with the AWS-managed key (set apart from CreateTopic, which refuses an existing topic
    # whose attributes differ).
    await aws.call(
        "sns", "set_topic_attributes", TopicArn=topic_arn, AttributeName="KmsMasterKeyId", AttributeValue=TOPIC_KMS_KEY
    )
    rule_name = f"{prefix}-rotation-events"
    label_rule_name = f"{prefix}-label-updated"
    rule_arn = await _rule(
        aws, rule_name, rotation_event_pattern(), queue_arn, dlq_arn, "Secrets Manager rotation events to rotaudit"
    )
    label_rule_arn = await _rule(
        aws, label_rule_name, label_event_pattern(), queue_arn, dlq_arn, "Secrets Manager label moves to rotaudit"
    )
    probe_rule = probe_rule_name(prefix)
    probe_rule_arn = await _rule(
        aws, probe_rule, probe_pattern(), queue_arn, dlq_arn, "rotaudit doctor --probe: its probe events to rotaudit"
    )
    rules = [rule_arn, label_rule_arn, probe_rule_arn]
    # Whoever provisions may send (DLQ replays, the daemon's rejections when it runs as the same principal).
    senders = [principal_of(str((await aws.call("sts", "get_caller_identity"))["Arn"]))]
    for url, arn, sid in (
        (queue_url, queue_arn, "AllowRotationEventRules"),
        (dlq_url, dlq_arn, "AllowUndeliveredRotationEvents"),
    ):
        policy = json.dumps(queue_policy(arn, rules, sid, senders))
        await aws.call("sqs", "set_queue_attributes", QueueUrl=url, Attributes={"Policy": policy})
    return {
        "queue_url": queue_url,
        "queue_arn": queue_arn,
        "dlq_url": dlq_url,
        "dlq_arn": dlq_arn,
        "table_name": table,
        "topic_arn": topic_arn,
        "rule_name": rule_name,
        "rule_arn": rule_arn,
        "label_rule_name": label_rule_name,
        "label_rule_arn": label_rule_arn,
        "probe_rule_name": probe_rule,
        "probe_rule_arn": probe_rule_arn,
        "region": aws.region,
    }
