"""Security Hub findings end to end on the emulator, wired as the daemon wires them (`daemon.features`).

Two replicas, each with its own AWS clients, processor and scanner built by `build_features`, share one hub:
the scan flags a secret (finding ACTIVE), a RotationFailed raises a second finding, the secret rotates and a
RotationSucceeded through the processors resolves both (ARCHIVED, compliance PASSED); the next scan resolves a
secret that was rotated without an event. Every event is delivered to both replicas: the ids are deterministic, so
nothing is ever duplicated.

moto 5.2 ignores GetFindings' filters and merges provider updates into Workflow; the emulator's
`securityhub-findings-as-aws` patch (daemon/devtools/patches/securityhub.py) makes it follow AWS: filters apply,
and a provider's update cannot change Workflow (the customer's field), which stays NEW.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from daemon.audit import AuditStore
from daemon.aws import Aws
from daemon.config import Config, load_config
from daemon.emit import build_event
from daemon.features import build_features
from daemon.findings.asff import Problem, finding_id
from daemon.metrics import Metrics
from daemon.processor import Message, Processor, Verdict
from daemon.scan.scanner import Scanner
from daemon.table import BY_RUN_ATTRIBUTES, BY_RUN_GSI, BY_RUN_INDEX, table_definition
from daemon.timer import utc_now
from tests.support import REGION
from tests.support import remediation as harness
from tests.support.rotation import Failure
from tests.support.scan import ACCOUNT, backdate, client, create_secret, isolated_region

VALUE = f"do-not-leak-{uuid.uuid4()}"


@dataclass
class Replica:
    aws: Aws
    metrics: Metrics
    processor: Processor
    scanner: Scanner

    def counter(self, name: str, **labels: str) -> float:
        return float(self.metrics.registry.get_sample_value(name, labels) or 0.0)


def create_table(endpoint: str, region: str) -> str:
    name = f"find{uuid.uuid4().hex[:10]}-audit"
    definition = table_definition(name)
    known = {attribute["AttributeName"] for attribute in definition["AttributeDefinitions"]}
    definition["AttributeDefinitions"] += [a for a in BY_RUN_ATTRIBUTES if a["AttributeName"] not in known]
    if all(index["IndexName"] != BY_RUN_INDEX for index in definition["GlobalSecondaryIndexes"]):
        definition["GlobalSecondaryIndexes"].append(BY_RUN_GSI)
    client("dynamodb", endpoint, region).create_table(**definition)
    return name


@pytest.fixture
def region(endpoint: str) -> str:
    """A region of its own, with Security Hub on (the emulator is shared; a hub is per account and region)."""
    name = isolated_region()
    client("securityhub", endpoint, name).enable_security_hub(EnableDefaultStandards=False)
    return name


@pytest.fixture
def config(endpoint: str, region: str) -> Config:
    return load_config(
        {
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL": endpoint,
            "ROTAUDIT_QUEUE_URL": f"{endpoint}/{ACCOUNT}/unused",
            "ROTAUDIT_AUDIT_TABLE": create_table(endpoint, region),
            "ROTAUDIT_SECURITYHUB": "true",
            "ROTAUDIT_SCAN_TAG": f"Find{uuid.uuid4().hex[:8]}=yes",
            "ROTAUDIT_REMEDIATION_MODE": "off",
        }
    )


@pytest.fixture
async def replicas(config: Config) -> AsyncIterator[list[Replica]]:
    """Two replicas built exactly as `Daemon` builds its parts."""
    async with AsyncExitStack() as stack:
        found = []
        for _ in range(2):
            aws = await stack.enter_async_context(Aws(config.aws_region, endpoint_url=config.aws_endpoint_url))
            metrics = Metrics()
            features = build_features(aws, config, metrics, dlq_url="")
            processor = Processor(AuditStore(aws, config.audit_table), metrics, hooks=features.hooks)
            scanner = features.jobs["scan"].__self__  # type: ignore[attr-defined]  # the job is Scanner.run
            found.append(Replica(aws, metrics, processor, scanner))
        yield found


def findings(endpoint: str, region: str, secret_arn: str) -> list[dict[str, Any]]:
    """Every finding about the secret, read with boto3 as a Security Hub user would."""
    hub = client("securityhub", endpoint, region)
    filters = {"ResourceId": [{"Value": secret_arn, "Comparison": "EQUALS"}]}
    return [f for page in hub.get_paginator("get_findings").paginate(Filters=filters) for f in page["Findings"]]


def by_problem(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["GeneratorId"].removeprefix("rotaudit/"): f for f in found}


async def deliver(replicas: list[Replica], envelope: dict[str, Any]) -> None:
    """The same message to every replica, as a redelivery would: each one processes it in full."""
    for index, replica in enumerate(replicas):
        message = Message(message_id=f"m-{index}", body=json.dumps(envelope), receipt_handle=f"r-{index}")
        (disposition,) = await replica.processor.process([message])
        assert disposition.verdict is Verdict.DONE


def old_secret(endpoint: str, config: Config, name: str) -> str:
    key, value = config.scan_tag.split("=")
    arn = create_secret(client("secretsmanager", endpoint, config.aws_region), name, {key: value}, VALUE)
    backdate(name, 40, region=config.aws_region)
    return arn


async def test_a_flagged_secret_is_raised_then_resolved_by_its_rotation_once_across_replicas(
    endpoint: str, config: Config, replicas: list[Replica]
) -> None:
    """Scan flags → ACTIVE; RotationFailed → a second ACTIVE finding; rotated + RotationSucceeded → both RESOLVED;
    every step through two replicas, one finding per (secret, problem)."""
    region = config.aws_region
    arn = old_secret(endpoint, config, f"orders-{uuid.uuid4().hex[:6]}")

    window = utc_now().replace(minute=0, second=0, microsecond=0)
    results = [await replica.scanner.run_window(window) for replica in replicas]
    assert [r is not None for r in results] == [True, False]  # one replica ran the window (the lease)
    await replicas[1].scanner.run_once()  # an ad-hoc run on the other replica raises the same finding again

    (flagged,) = findings(endpoint, region, arn)
    assert flagged["Id"] == finding_id(ACCOUNT, region, arn, Problem.NEEDS_ROTATION)
    assert (flagged["RecordState"], flagged["Compliance"]["Status"], flagged["Workflow"]["Status"]) == (
        "ACTIVE",
        "FAILED",
        "NEW",
    )
    assert flagged["Compliance"]["RelatedRequirements"] == ["SecretsManager.1", "SecretsManager.4"]
    assert flagged["Severity"]["Label"] == "MEDIUM"
    assert flagged["Resources"][0]["Type"] == "AwsSecretsManagerSecret"
    assert flagged["Resources"][0]["Id"] == arn
    assert flagged["ProductArn"] == f"arn:aws:securityhub:{region}:{ACCOUNT}:product/{ACCOUNT}/default"

    rotation = str(uuid.uuid4())
    await deliver(replicas, build_event("RotationFailed", arn, rotation_id=rotation, step="setSecret"))
    found = by_problem(findings(endpoint, region, arn))
    assert sorted(found) == ["needs_rotation", "rotation_failed"]
    assert found["rotation_failed"]["RecordState"] == "ACTIVE"
    assert found["rotation_failed"]["Compliance"]["RelatedRequirements"] == ["SecretsManager.2"]
    assert found["rotation_failed"]["Severity"]["Label"] == "HIGH"

    client("secretsmanager", endpoint, region).put_secret_value(SecretId=arn, SecretString=f"{VALUE}-next")
    await deliver(replicas, build_event("RotationSucceeded", arn, rotation_id=rotation))
    found = by_problem(findings(endpoint, region, arn))
    assert sorted(found) == ["needs_rotation", "rotation_failed"]
    for finding in found.values():
        assert (finding["RecordState"], finding["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
        assert finding["Workflow"]["Status"] == "NEW"  # a provider cannot set Workflow on an update (AWS)
    assert "Secrets Manager reported RotationSucceeded" in found["rotation_failed"]["Description"]

    await replicas[0].scanner.run_once()  # the rotated secret is fine now: nothing is raised again
    assert [f["RecordState"] for f in findings(endpoint, region, arn)] == ["ARCHIVED", "ARCHIVED"]
    assert VALUE not in json.dumps(findings(endpoint, region, arn))
    imported = sum(
        r.counter("rotaudit_findings_imported_total", problem="needs_rotation", state="active") for r in replicas
    )
    assert imported == 2  # the scheduled run and the ad-hoc run; the skipped replica sent nothing


async def test_the_next_scan_resolves_a_secret_rotated_without_an_event(
    endpoint: str, config: Config, replicas: list[Replica]
) -> None:
    """A secret rotated while no event arrived: the next scan finds it fresh and resolves its finding."""
    region = config.aws_region
    arn = old_secret(endpoint, config, f"billing-{uuid.uuid4().hex[:6]}")
    await replicas[0].scanner.run_once()
    assert [f["RecordState"] for f in findings(endpoint, region, arn)] == ["ACTIVE"]

    client("secretsmanager", endpoint, region).put_secret_value(SecretId=arn, SecretString=f"{VALUE}-next")
    await replicas[1].scanner.run_once()
    (resolved,) = findings(endpoint, region, arn)
    assert (resolved["RecordState"], resolved["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
    assert replicas[1].counter("rotaudit_findings_imported_total", problem="needs_rotation", state="resolved") == 1


async def test_a_stale_failure_does_not_reopen_a_resolved_rotation(
    endpoint: str, config: Config, replicas: list[Replica]
) -> None:
    """A RotationFailed redelivered after the RotationSucceeded that followed it leaves the finding resolved."""
    region = config.aws_region
    arn = old_secret(endpoint, config, f"ledger-{uuid.uuid4().hex[:6]}")
    earlier = utc_now() - timedelta(minutes=5)
    failed = build_event("RotationFailed", arn, step="testSecret", when=earlier)
    await deliver(replicas[:1], failed)
    await deliver(replicas[:1], build_event("RotationSucceeded", arn, when=earlier + timedelta(minutes=1)))
    await deliver(replicas[1:], failed)
    (finding,) = findings(endpoint, region, arn)
    assert finding["RecordState"] == "ARCHIVED"
    assert replicas[1].counter("rotaudit_findings_skipped_total", reason="stale") == 1


async def test_findings_stay_off_unless_enabled(endpoint: str, config: Config) -> None:
    """Without ROTAUDIT_SECURITYHUB a scan that flags a secret raises no finding and calls no Security Hub API."""
    off = load_config(
        {
            "AWS_REGION": config.aws_region,
            "ROTAUDIT_QUEUE_URL": config.queue_url,
            "ROTAUDIT_AUDIT_TABLE": config.audit_table,
            "ROTAUDIT_SCAN_TAG": config.scan_tag,
        }
    )
    arn = old_secret(endpoint, config, f"quiet-{uuid.uuid4().hex[:6]}")
    metrics = Metrics()
    async with Aws(off.aws_region, endpoint_url=endpoint, metrics=metrics) as aws:
        scanner = build_features(aws, off, metrics, dlq_url="").jobs["scan"].__self__  # type: ignore[attr-defined]
        assert (await scanner.run_once()).flagged == 1
    assert findings(endpoint, off.aws_region, arn) == []
    calls = metrics.registry.get_sample_value(
        "rotaudit_aws_calls_total", {"service": "sts", "operation": "get_caller_identity"}
    )
    assert not calls


@pytest.mark.usefixtures("rotations_settle")
async def test_an_escalated_failure_raises_a_critical_needs_human_finding(endpoint: str, stack: dict[str, str]) -> None:
    """testSecret failed with no safe move: remediation escalates, and its notice becomes a CRITICAL finding beside
    the failure's own, naming the reason and never a value."""
    client("securityhub", endpoint, REGION).enable_security_hub(EnableDefaultStandards=False)
    secret = harness.rotating_secret(
        endpoint, strategy="unknown", failures=[Failure("testSecret", None)], tags={"rotaudit:move-current": "allowed"}
    )
    harness.rotate(endpoint, secret)
    cfg = harness.config(endpoint, stack, ROTAUDIT_SECURITYHUB="true")
    metrics = Metrics()
    async with Aws(REGION, endpoint_url=endpoint, metrics=metrics) as aws:
        features = build_features(aws, cfg, metrics, dlq_url="")
        processor = Processor(AuditStore(aws, cfg.audit_table), metrics, hooks=features.hooks)
        job = features.jobs["remediation"].__self__  # type: ignore[attr-defined]  # the job is RetryJob.run
        replica = harness.Replica(job.remediator, processor, job, metrics)
        await harness.pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        await harness.pump(endpoint, stack["queue_url"], replica)
    found = by_problem(findings(endpoint, REGION, secret.arn))
    assert sorted(found) == ["needs_human", "rotation_failed"]
    human = found["needs_human"]
    assert (human["RecordState"], human["Severity"]["Label"]) == ("ACTIVE", "CRITICAL")
    assert human["ProductFields"]["rotaudit/reasons"] == "strategy_unknown"
    assert harness.CANARY not in json.dumps(list(found.values()))


def test_the_emulator_follows_aws_on_provider_updates_and_filters(endpoint: str, region: str) -> None:
    """The securityhub patch: filters apply; an update cannot change Workflow; re-opening resets it to NEW; a
    finding missing a required attribute fails alone; another account's finding is refused."""
    # Without botocore's own checks, so the missing attribute reaches the server as it would from any client.
    hub = boto3.client(
        "securityhub", region_name=region, endpoint_url=endpoint, config=BotoConfig(parameter_validation=False)
    )
    arn = f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:patch-AbCdEf"
    base = {
        "SchemaVersion": "2018-10-08",
        "Id": f"patch-{uuid.uuid4().hex}",
        "ProductArn": f"arn:aws:securityhub:{region}:{ACCOUNT}:product/{ACCOUNT}/default",
        "GeneratorId": "rotaudit/test",
        "AwsAccountId": ACCOUNT,
        "Types": ["Software and Configuration Checks/AWS Security Best Practices"],
        "CreatedAt": "2030-01-01T00:00:00.000Z",
        "UpdatedAt": "2030-01-01T00:00:00.000Z",
        "Severity": {"Label": "MEDIUM"},
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "AwsSecretsManagerSecret", "Id": arn}],
    }
    hub.batch_import_findings(Findings=[base])
    answer = hub.batch_import_findings(
        Findings=[
            {**base, "RecordState": "ARCHIVED", "Workflow": {"Status": "RESOLVED"}},
            {k: v for k, v in base.items() if k != "Title"} | {"Id": "missing-title"},
            base | {"Id": "other-account", "AwsAccountId": "999999999999"},
        ]
    )
    assert sorted((f["Id"], f["ErrorCode"]) for f in answer["FailedFindings"]) == [
        ("missing-title", "InvalidInput"),
        ("other-account", "AccessDenied"),
    ]
    (archived,) = hub.get_findings(Filters={"Id": [{"Value": base["Id"], "Comparison": "EQUALS"}]})["Findings"]
    assert (archived["RecordState"], archived["Workflow"]["Status"]) == ("ARCHIVED", "NEW")
    active = {"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]}
    assert (
        hub.get_findings(Filters={"ResourceId": [{"Value": arn, "Comparison": "EQUALS"}], **active})["Findings"] == []
    )


async def test_a_flagged_secret_of_another_account_is_counted_not_imported(endpoint: str, config: Config) -> None:
    """With the default product ARN a finding must name the caller's account: another account's flagged secret
    (scanned through its role) gets no finding and is counted as skipped."""
    region = config.aws_region
    account = str(random.randrange(10**11, 10**12))
    role_arn = f"arn:aws:iam::{account}:role/rotaudit-scan"
    creds = client("sts", endpoint).assume_role(RoleArn=role_arn, RoleSessionName="test-setup")["Credentials"]
    keys = {"AccessKeyId": "aws_access_key_id", "SecretAccessKey": "aws_secret_access_key"}
    other = client(
        "secretsmanager",
        endpoint,
        region,
        **{v: creds[k] for k, v in keys.items()},
        aws_session_token=creds["SessionToken"],
    )
    key, value = config.scan_tag.split("=")
    name = f"xacct-{uuid.uuid4().hex[:6]}"
    arn = create_secret(other, name, {key: value})
    backdate(name, 40, region=region, account=account)
    targets = json.dumps([{"role_arn": role_arn}])
    settings = {"AWS_REGION": region, "ROTAUDIT_SCAN_TARGETS": targets, "ROTAUDIT_QUEUE_URL": config.queue_url}
    cross = load_config(
        settings
        | {
            "ROTAUDIT_AUDIT_TABLE": config.audit_table,
            "ROTAUDIT_SECURITYHUB": "true",
            "ROTAUDIT_SCAN_TAG": config.scan_tag,
        }
    )
    metrics = Metrics()
    async with Aws(region, endpoint_url=endpoint, metrics=metrics) as aws:
        scanner = build_features(aws, cross, metrics, dlq_url="").jobs["scan"].__self__  # type: ignore[attr-defined]
        assert (await scanner.run_once()).flagged == 1
    assert findings(endpoint, region, arn) == []
    assert metrics.registry.get_sample_value("rotaudit_findings_skipped_total", {"reason": "other_account"}) == 1
