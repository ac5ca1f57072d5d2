"""`rotaudit doctor` as a subprocess against the emulator: a provisioned stack passes; each thing broken fails, named.

Each test provisions its own stack (`daemon.provision`, unique prefix) in a region of its own choosing: CloudTrail
trails are regional state the shared emulator keeps, so the healthy stacks live in a region with a logging trail
and the no-trail test in one that never gets one. The task role is an IAM role granting exactly what
tests/support/iam.py derives from the daemon's code. The emulator has no SimulatePrincipalPolicy and no AssumeRole
trust: the stand-ins in daemon/devtools/patches (iam, sts) fill in, so here `iam.*` proves the role's policy names
each action (not its resources or conditions), and `scan.role.*` that an existing role's trust admits the caller.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.aws import Aws
from daemon.provision import provision
from daemon.table import table_definition
from tests.support import FAKE_CREDENTIALS, ROOT, daemon_env, rotaudit_cmd
from tests.support.daemon_process import DaemonProcess
from tests.support.iam import Deployment, expected_actions
from tests.support.scan import client

TRAIL_REGION = "ap-east-1"  # a logging trail lives here (no other test file uses this region)
NO_TRAIL_REGION = "ap-southeast-3"  # no trail is ever created here
TRUST_ECS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _trail(endpoint: str, region: str) -> None:
    """A logging trail homed in `region`, once per session."""
    trails = client("cloudtrail", endpoint, region)
    if trails.describe_trails(includeShadowTrails=False)["trailList"]:
        return
    bucket = f"doctor-trail-{uuid.uuid4().hex[:12]}"
    client("s3", endpoint, region).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
    )
    arn = trails.create_trail(Name=f"doctor-{uuid.uuid4().hex[:8]}", S3BucketName=bucket)["TrailARN"]
    trails.start_logging(Name=arn)


def _task_role(endpoint: str, actions: set[str]) -> str:
    iam = client("iam", endpoint)
    name = f"doctor-task-{uuid.uuid4().hex[:8]}"
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ECS))["Role"]["Arn"])
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": sorted(actions), "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="task", PolicyDocument=json.dumps(policy))
    return arn


def _stack(endpoint: str, region: str) -> dict[str, str]:
    async def go() -> dict[str, str]:
        async with Aws(region, endpoint_url=endpoint) as aws:
            return await provision(aws, f"doc{uuid.uuid4().hex[:8]}")

    return asyncio.run(go())


@pytest.fixture
def deployment(endpoint: str) -> dict[str, str]:
    """A provisioned stack in the trail's region, and a task role granting what the daemon's code calls."""
    _trail(endpoint, TRAIL_REGION)
    stack = _stack(endpoint, TRAIL_REGION)
    return stack | {"role_arn": _task_role(endpoint, expected_actions(Deployment()))}


def doctor(endpoint: str, stack: dict[str, str], *args: str, **settings: str) -> tuple[int, dict[str, Any]]:
    """Run `rotaudit doctor --output json` on the stack; (exit code, the JSON it printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env |= FAKE_CREDENTIALS | {
        "AWS_REGION": stack["region"],
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "ROTAUDIT_QUEUE_URL": stack["queue_url"],
        "ROTAUDIT_DLQ_URL": stack["dlq_url"],
        "ROTAUDIT_AUDIT_TABLE": stack["table_name"],
        "ROTAUDIT_SNS_TOPIC_ARN": stack["topic_arn"],
    }
    env |= settings
    prefix = stack["rule_name"].removesuffix("-rotation-events")
    command = rotaudit_cmd("doctor", "--output", "json", "--prefix", prefix, "--role-arn", stack["role_arn"], *args)
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def scan_table(endpoint: str, table: str, region: str) -> list[dict[str, Any]]:
    items = client("dynamodb", endpoint, region).scan(TableName=table)["Items"]
    return [{key: next(iter(value.values())) for key, value in item.items()} for item in items]


def queue_depth(endpoint: str, queue_url: str, region: str) -> int:
    attributes = client("sqs", endpoint, region).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def failures(report: dict[str, Any]) -> dict[str, str]:
    """Failed check name -> its fix."""
    return {check["name"]: check["fix"] for check in report["checks"] if check["status"] == "fail"}


def test_a_provisioned_stack_passes(endpoint: str, deployment: dict[str, str]) -> None:
    """Everything provisioned, a logging trail, a task role with every action: exit 0, no check fails."""
    code, report = doctor(endpoint, deployment)
    assert (code, failures(report), report["ok"]) == (0, {}, True), [
        c for c in report["checks"] if c["status"] in ("fail", "warn")
    ]
    names = {check["name"] for check in report["checks"] if check["status"] == "pass"}
    assert {"queue.exists", "dlq.exists", "queue.redrive", "table.active", "table.indexes", "table.ttl"} <= names
    assert {"topic.reachable", "rules.rotation", "rules.label", "queue.policy", "trail.logging"} <= names
    assert {"iam.sqs:ReceiveMessage", "iam.dynamodb:PutItem", "iam.secretsmanager:ListSecrets"} <= names


def test_the_text_output_is_a_table_with_a_fix_per_failure(endpoint: str, deployment: dict[str, str]) -> None:
    """`--output text` prints CHECK / RESULT / DETAIL / FIX rows; a failure's row carries its fix."""
    client("events", endpoint, deployment["region"]).disable_rule(Name=deployment["rule_name"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env |= FAKE_CREDENTIALS | {"AWS_REGION": deployment["region"], "AWS_ENDPOINT_URL": endpoint}
    env |= {"ROTAUDIT_QUEUE_URL": deployment["queue_url"], "ROTAUDIT_AUDIT_TABLE": deployment["table_name"]}
    prefix = deployment["rule_name"].removesuffix("-rotation-events")
    done = subprocess.run(
        rotaudit_cmd("doctor", "--prefix", prefix), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL", "/", "FIX"]
    (row,) = [line for line in lines if line.startswith("rules.rotation ")]
    assert row.split()[1] == "FAIL"
    assert f"enable-rule --name {deployment['rule_name']}" in row


def test_invalid_settings_fail_naming_every_bad_field(endpoint: str, deployment: dict[str, str]) -> None:
    """Two bad settings: exit 1, one failed `config` check for each, naming its variable."""
    code, report = doctor(endpoint, deployment, ROTAUDIT_MAX_AGE_DAYS="0", ROTAUDIT_SCAN_TAG="no-equals-sign")
    assert code == 1
    details = [check["detail"] for check in report["checks"] if check["name"] == "config"]
    assert any(d.startswith("ROTAUDIT_MAX_AGE_DAYS") for d in details)
    assert any(d.startswith("ROTAUDIT_SCAN_TAG") for d in details)


def test_a_missing_queue_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """A queue URL that names no queue: queue.exists fails, saying where the URL comes from."""
    missing = deployment["queue_url"].rsplit("/", 1)[0] + "/no-such-queue"
    code, report = doctor(endpoint, deployment, ROTAUDIT_QUEUE_URL=missing)
    assert code == 1
    assert "terraform output queue_url" in failures(report)["queue.exists"]


def test_a_table_without_an_index_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """An audit table lacking the by_run index: table.indexes fails and says to recreate it."""
    name = f"doc{uuid.uuid4().hex[:8]}-audit"
    definition = table_definition(name)
    definition["GlobalSecondaryIndexes"] = [
        i for i in definition["GlobalSecondaryIndexes"] if i["IndexName"] != "by_run"
    ]
    definition["AttributeDefinitions"] = [
        a for a in definition["AttributeDefinitions"] if a["AttributeName"] not in ("run_id", "status_name")
    ]
    client("dynamodb", endpoint, deployment["region"]).create_table(**definition)
    code, report = doctor(endpoint, deployment, "--table", name)
    assert code == 1
    (check,) = [c for c in report["checks"] if c["name"] == "table.indexes"]
    assert "by_run" in check["detail"]
    assert "daemon/table.py" in check["fix"]


def test_a_disabled_rule_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """The rotation rule disabled: rules.rotation fails with the command that enables it."""
    client("events", endpoint, deployment["region"]).disable_rule(Name=deployment["rule_name"])
    code, report = doctor(endpoint, deployment)
    assert code == 1
    assert failures(report)["rules.rotation"] == f"aws events enable-rule --name {deployment['rule_name']}"


def test_a_rule_targeting_elsewhere_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """The label rule pointed at another queue: rules.label fails, naming the rule."""
    events, sqs = client("events", endpoint, deployment["region"]), client("sqs", endpoint, deployment["region"])
    other = sqs.create_queue(QueueName=f"doc{uuid.uuid4().hex[:8]}-other")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.remove_targets(Rule=deployment["label_rule_name"], Ids=["rotaudit-queue"])
    events.put_targets(Rule=deployment["label_rule_name"], Targets=[{"Id": "elsewhere", "Arn": other_arn}])
    code, report = doctor(endpoint, deployment)
    assert code == 1
    assert deployment["label_rule_name"] in failures(report)["rules.label"]
    assert "rules.rotation" not in failures(report)


def test_a_queue_policy_not_admitting_the_rules_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """A queue policy that admits EventBridge only for some other rule: queue.policy fails."""
    region = deployment["region"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": deployment["queue_arn"],
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:events:{region}:123456789012:rule/other"}},
            }
        ],
    }
    sqs = client("sqs", endpoint, region)
    sqs.set_queue_attributes(QueueUrl=deployment["queue_url"], Attributes={"Policy": json.dumps(policy)})
    code, report = doctor(endpoint, deployment)
    assert code == 1
    assert "aws:SourceArn" in failures(report)["queue.policy"]


def test_no_trail_in_the_region_fails(endpoint: str) -> None:
    """A stack in a region no trail logs: trail.logging fails and says to create one."""
    stack = _stack(endpoint, NO_TRAIL_REGION) | {"role_arn": _task_role(endpoint, expected_actions(Deployment()))}
    code, report = doctor(endpoint, stack)
    assert code == 1
    assert set(failures(report)) == {"trail.logging"}
    assert "create_cloudtrail" in failures(report)["trail.logging"]


def test_a_role_lacking_an_action_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """A task role without sqs:DeleteMessage: iam.sqs:DeleteMessage fails, saying to grant it; nothing else does."""
    role = _task_role(endpoint, expected_actions(Deployment()) - {"sqs:DeleteMessage"})
    code, report = doctor(endpoint, deployment | {"role_arn": role})
    assert code == 1
    assert set(failures(report)) == {"iam.sqs:DeleteMessage"}
    assert failures(report)["iam.sqs:DeleteMessage"].startswith(f"grant sqs:DeleteMessage to {role}")


def test_an_unassumable_scan_role_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """A scan target whose role trusts only ECS tasks: its scan.role check fails; an assumable one passes."""
    iam = client("iam", endpoint)
    name = f"doctor-scan-{uuid.uuid4().hex[:8]}"
    closed = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ECS))["Role"]["Arn"]
    roles = expected_actions(Deployment(scan_roles=True))
    role = _task_role(endpoint, roles)
    targets = json.dumps([{"role_arn": closed}])
    code, report = doctor(endpoint, deployment | {"role_arn": role}, ROTAUDIT_SCAN_TARGETS=targets)
    assert code == 1
    assert set(failures(report)) == {"scan.role.123456789012"}
    assert closed in failures(report)["scan.role.123456789012"]


@pytest.fixture
def running_daemon(endpoint: str, deployment: dict[str, str], tmp_path: Path) -> Iterator[DaemonProcess]:
    """`rotaudit run` consuming the deployment's queue (no scan, no remediation: only the consumer matters here)."""
    settings = {"AWS_REGION": deployment["region"], "ROTAUDIT_DLQ_URL": deployment["dlq_url"]}
    settings |= {"ROTAUDIT_SCAN_ENABLED": "false", "ROTAUDIT_REMEDIATION_MODE": "off"}
    daemon = DaemonProcess(daemon_env(endpoint, deployment, **settings), tmp_path)
    daemon.wait_ready()
    yield daemon
    daemon.stop()


def test_a_probe_arrives_and_the_daemon_records_it_apart(
    endpoint: str, deployment: dict[str, str], running_daemon: DaemonProcess
) -> None:
    """--probe with a daemon running: the probe goes rule -> queue -> daemon, which records it as a probe item only
    (no secret's partition, nothing dead-lettered), and doctor exits 0."""
    code, report = doctor(endpoint, deployment, "--probe", "--probe-timeout", "30")
    assert (code, failures(report)) == (0, {})
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert (statuses["probe.rule"], statuses["probe.delivered"]) == ("pass", "pass")
    items = scan_table(endpoint, deployment["table_name"], deployment["region"])
    assert [item["kind"] for item in items] == ["probe"]
    assert items[0]["pk"].startswith("probe#")
    assert queue_depth(endpoint, deployment["dlq_url"], deployment["region"]) == 0
    assert "event.probe_recorded" in {record.get("event") for record in running_daemon.log_records()}


def test_a_probe_whose_rule_targets_elsewhere_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """--probe with the probe rule's target removed: probe.rule fails and nothing is sent."""
    events = client("events", endpoint, deployment["region"])
    events.remove_targets(Rule=deployment["probe_rule_name"], Ids=["rotaudit-queue"])
    code, report = doctor(endpoint, deployment, "--probe", "--probe-timeout", "1")
    assert code == 1
    assert set(failures(report)) == {"probe.rule"}


def test_a_probe_nobody_records_fails(endpoint: str, deployment: dict[str, str]) -> None:
    """--probe with no daemon consuming the queue: probe.delivered fails within the timeout and says what to check;
    the probe waits on the queue for the daemon (it never reaches the DLQ)."""
    code, report = doctor(endpoint, deployment, "--probe", "--probe-timeout", "2")
    assert code == 1
    assert set(failures(report)) == {"probe.delivered"}
    assert "daemon running" in failures(report)["probe.delivered"]
