"""Event routing: EventBridge rules that match rotation and label events exist, are enabled, target the queue, and
the queue's policy lets EventBridge deliver them.

Rules are found two ways: those that target the queue (`ListRuleNamesByTarget`) and those named as `rotaudit
provision` and Terraform name them (`<prefix>-rotation-events`, `<prefix>-label-updated`), so that a rule that
exists but targets elsewhere is named in the failure. Whether a rule matches is asked of EventBridge itself
(`TestEventPattern` with a sample event), so hand-written rules with other names and patterns count too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daemon.aws import Aws
from daemon.doctor.policy import Verdict, delivery_verdict
from daemon.doctor.resources import PROVISION_FIX, Found, call_failed
from daemon.doctor.result import Check, failed, passed, skipped, warned
from daemon.errors import AwsError
from daemon.events import EVENT_SOURCE, SOURCE


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    arn: str
    state: str
    pattern: str
    target_arns: tuple[str, ...]


def sample_events(region: str, account: str) -> dict[str, dict[str, Any]]:
    """One event of each kind the daemon needs delivered, as EventBridge would carry it (AWS-FACTS §1)."""
    secret = f"arn:aws:secretsmanager:{region}:{account}:secret:rotaudit-doctor-sample-AbCdEf"
    envelope = {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "source": SOURCE,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
    }
    return {
        "rotation": envelope
        | {
            "detail-type": "AWS Service Event via CloudTrail",
            "resources": [],
            "detail": {
                "eventSource": EVENT_SOURCE,
                "eventName": "RotationFailed",
                "eventType": "AwsServiceEvent",
                "additionalEventData": {"SecretId": secret},
            },
        },
        "label": envelope
        | {
            "detail-type": "Secret Label Updated",
            "resources": [secret],
            "detail": {"versionId": "00000000-0000-0000-0000-000000000000", "labelUpdated": "AWSCURRENT"},
        },
    }


async def _rule(aws: Aws, name: str) -> Rule | None:
    try:
        rule = await aws.call("events", "describe_rule", Name=name)
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise
    targets = await aws.call("events", "list_targets_by_rule", Rule=name)
    return Rule(
        name=name,
        arn=str(rule.get("Arn", "")),
        state=str(rule.get("State", "")),
        pattern=str(rule.get("EventPattern") or ""),
        target_arns=tuple(str(t.get("Arn", "")) for t in targets.get("Targets", [])),
    )


async def _matches(aws: Aws, rule: Rule, event: dict[str, Any]) -> bool:
    if not rule.pattern:  # a scheduled rule
        return False
    tested = await aws.call("events", "test_event_pattern", EventPattern=rule.pattern, Event=json.dumps(event))
    return bool(tested.get("Result"))


async def find_rules(aws: Aws, queue_arn: str, prefix: str) -> list[Rule]:
    """Rules that target the queue, and the rules provision/Terraform would have named for `prefix`."""
    names: list[str] = []
    if queue_arn:
        listed = await aws.call("events", "list_rule_names_by_target", TargetArn=queue_arn)
        names.extend(str(n) for n in listed.get("RuleNames", []))
    names.extend(n for n in (f"{prefix}-rotation-events", f"{prefix}-label-updated") if n not in names)
    rules = [await _rule(aws, name) for name in names]
    return [rule for rule in rules if rule is not None]


async def check_rules(aws: Aws, found: Found, *, prefix: str, account: str) -> tuple[list[Check], list[Rule]]:
    """rules.rotation and rules.label (a matching rule, enabled, targeting the queue), then queue.policy."""
    if not found.queue_arn:
        return [skipped("rules", "no queue to deliver to (see queue.exists)")], []
    try:
        rules = await find_rules(aws, found.queue_arn, prefix)
        checks: list[Check] = []
        delivering: list[Rule] = []
        for kind, event in sample_events(aws.region, account).items():
            matching = [rule for rule in rules if await _matches(aws, rule, event)]
            check, good = _judge(f"rules.{kind}", kind, matching, found.queue_arn)
            checks.append(check)
            delivering.extend(rule for rule in good if rule not in delivering)
    except AwsError as exc:
        return [call_failed("rules", exc, "EventBridge rules", PROVISION_FIX)], []
    checks.extend(_check_policy(found, delivering))
    return checks, delivering


def _judge(name: str, kind: str, matching: list[Rule], queue_arn: str) -> tuple[Check, list[Rule]]:
    good = [rule for rule in matching if rule.state == "ENABLED" and queue_arn in rule.target_arns]
    if good:
        return passed(name, ", ".join(rule.name for rule in good) + " -> the queue"), good
    if not matching:
        detail = f"no EventBridge rule in {kind!r} shape matches a sample {kind} event and targets the queue"
        return failed(name, detail, PROVISION_FIX), []
    rule = matching[0]
    if rule.state != "ENABLED":
        return failed(name, f"rule {rule.name} is {rule.state}", f"aws events enable-rule --name {rule.name}"), []
    elsewhere = ", ".join(rule.target_arns) or "nothing"
    fix = f"target the queue from rule {rule.name} ({PROVISION_FIX})"
    return failed(name, f"rule {rule.name} targets {elsewhere}, not the queue", fix), []


def _check_policy(found: Found, rules: list[Rule]) -> list[Check]:
    if not rules:
        return [skipped("queue.policy", "no rule delivers to the queue (see rules.*)")]
    verdicts = {rule.name: delivery_verdict(found.queue_policy, found.queue_arn, rule.arn) for rule in rules}
    refused = [name for name, verdict in verdicts.items() if verdict in (Verdict.DENIED, Verdict.NOT_ALLOWED)]
    if refused:
        detail = f"the queue policy does not let EventBridge deliver for {', '.join(refused)}"
        fix = (
            "allow events.amazonaws.com sqs:SendMessage on the queue with aws:SourceArn = each rule's ARN "
            f"({PROVISION_FIX})"
        )
        return [failed("queue.policy", detail, fix)]
    unknown = [name for name, verdict in verdicts.items() if verdict is Verdict.UNKNOWN]
    if unknown:
        detail = f"the queue policy uses conditions doctor does not evaluate (rules {', '.join(unknown)})"
        return [warned("queue.policy", detail, "run `rotaudit doctor --probe` to test delivery end to end")]
    return [passed("queue.policy", f"admits EventBridge for {', '.join(verdicts)}")]
