"""deploy/terraform: checkov-clean, and on the emulator the same shapes as `rotaudit provision`, torn down cleanly.

The stack goes up once per module through `deploy/local.sh up` (its own emulator on a free port, examples/complete,
the root calling modules/rotaudit, applied from a working copy), is compared with `rotaudit provision` through the
AWS API, runs the tutorial's three scenarios (`local.sh test`) and comes down (`local.sh down`). The tests run in
file order: the last one tears the stack down. ECS tasks never run on the emulator, so the ECS side is checked as
configuration.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from daemon.aws import Aws
from daemon.config import load_config
from daemon.emit import build_event
from daemon.events import RotationEvent, parse_message
from daemon.metrics import Metrics
from daemon.probe import probe_pattern
from daemon.provision import MAX_RECEIVE_COUNT, label_event_pattern, rotation_event_pattern
from daemon.table import table_definition
from daemon.trail import check_cloudtrail
from tests.support import REGION, ROOT, boto, free_port, rotaudit_cmd, wait_until
from tests.support.iam import Deployment, expected_actions, granted, resources_for
from tests.support.terraform import EXAMPLE, FORWARDING_ACCOUNT, LOCAL_SH, MODULE, TERRAFORM, leftovers

SCHEDULE = "rate(30 minutes)"  # not the default, so scenario A proves the setting reaches the task
STEPS_UP = ("emulator", "working copy", "terraform init", "terraform apply", "outputs", "seed secrets")
EVERY_KIND = {"queue", "table", "topic", "subscription", "rule", "cluster", "service", "task-definition", "role"}
EVERY_KIND |= {"log-group", "secret", "trail", "bucket", "alarm", "metric-filter", "query"}


@dataclass
class Stack:
    """A stack brought up by `deploy/local.sh up`."""

    endpoint: str
    prefix: str
    env: dict[str, str]
    up_output: str
    outputs: dict[str, Any]
    workdir: Path
    torn_down: bool = field(default=False)


def local_sh(env: dict[str, str], command: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LOCAL_SH), command], env=env, capture_output=True, text=True, timeout=timeout_s)


def terraform_env() -> dict[str, str]:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "GOGC": "400"}  # as deploy/local.sh runs it
    if not Path(env.get("TF_CLI_CONFIG_FILE", os.devnull)).exists():
        del env["TF_CLI_CONFIG_FILE"]  # names a missing file: terraform would only warn about it
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH; `make terraform-tools` checks for it and the provider mirror")
    port, prefix = free_port(), f"tf{uuid.uuid4().hex[:8]}"
    workdir = tmp_path_factory.mktemp("local")
    env = {
        **os.environ,
        "ROTAUDIT_LOCAL_PORT": str(port),
        "ROTAUDIT_LOCAL_PREFIX": prefix,
        "ROTAUDIT_LOCAL_DIR": str(workdir),
        "ROTAUDIT_LOCAL_SCHEDULE": SCHEDULE,
    }
    up = local_sh(env, "up")
    if up.returncode != 0:
        local_sh(env, "down")
        pytest.fail(f"local.sh up exited {up.returncode}:\n{up.stdout}\n{up.stderr}")
    outputs = {k: v["value"] for k, v in json.loads((workdir / "outputs.json").read_text()).items()}
    built = Stack(
        f"http://127.0.0.1:{port}", prefix, env, up.stdout, outputs, workdir / "terraform" / "examples" / "complete"
    )
    yield built
    if not built.torn_down:
        local_sh(env, "down")


@pytest.fixture(scope="module")
def provisioned(stack: Stack) -> dict[str, str]:
    """`rotaudit provision` on the same emulator, under another prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTAUDIT_")}
    env |= {"AWS_ENDPOINT_URL": stack.endpoint, "AWS_REGION": REGION}
    done = subprocess.run(
        rotaudit_cmd("provision", "--prefix", f"{stack.prefix}p", "--output", "json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def queue_attributes(endpoint: str, url: str) -> dict[str, str]:
    return dict(boto("sqs", endpoint).get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def table_shape(endpoint: str, name: str) -> dict[str, Any]:
    """What the audit table must share with `rotaudit provision`'s, in a comparable form."""
    ddb = boto("dynamodb", endpoint)
    table = ddb.describe_table(TableName=name)["Table"]
    return {
        "keys": table["KeySchema"],
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]),
        "indexes": {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in table["GlobalSecondaryIndexes"]},
        "billing": table["BillingModeSummary"]["BillingMode"],
        "sse": (table["SSEDescription"]["Status"], table["SSEDescription"]["SSEType"]),
        "ttl": ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"],
        "pitr": ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"
        ]["PointInTimeRecoveryStatus"],
    }


def checkov_bin() -> str:
    cached = sorted(Path("/var/cache/rotaudit").glob("checkov-venv-*/bin/checkov"))
    found = os.environ.get("CHECKOV") or (str(cached[-1]) if cached else None)
    if found is None or not Path(found).exists():
        pytest.fail("checkov is not installed: run `make checkov-tools` (its own venv under /var/cache/rotaudit)")
    return found


def test_checkov_passes_and_every_skip_says_why() -> None:
    """checkov finds nothing in deploy/terraform (the modules and the example), offline, and each check skipped in
    place carries a reason."""
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    args = [checkov_bin(), "-d", str(TERRAFORM), "--framework", "terraform", "--skip-download", "-o", "json"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [], failed
    assert report["summary"]["passed"] >= 50, report["summary"]  # it really parsed the module
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) >= 40, skipped["check_id"]
    assert done.returncode == 0, done.stderr


def test_module_keeps_emulator_settings_out() -> None:
    """The module and the example name no endpoint, credential or emulator switch; those live in
    deploy/terraform/emulator/."""
    text = "\n".join(path.read_text() for path in [*MODULE.glob("*.tf"), *EXAMPLE.glob("*.tf")])
    for forbidden in (r"endpoints\s*\{", r"emulator", r"\bskip_\w+\s*=", r"(access|secret)_key\s*=", r":4566\b"):
        assert not re.search(forbidden, text), forbidden
    assert "skip_credentials_validation" in (TERRAFORM / "emulator" / "emulator_override.tf").read_text()


def test_modules_configure_no_provider() -> None:
    """A module callers can use: no provider block (the caller's provider is passed in), and an AWS provider
    constraint that admits the 5.x and 6.x lines; the example root holds the provider block."""
    for module in (MODULE, TERRAFORM / "modules" / "forward-events"):
        text = "\n".join(path.read_text() for path in module.glob("*.tf"))
        assert not re.search(r'^\s*provider\s+"', text, re.MULTILINE), module
    constraint = re.search(r'aws\s*=\s*\{[^}]*version\s*=\s*"([^"]+)"', (MODULE / "versions.tf").read_text())
    assert constraint is not None
    assert constraint.group(1) == ">= 5.100, < 7"
    assert re.search(r'^provider "aws"', (EXAMPLE / "main.tf").read_text(), re.MULTILINE)
    lock = (EXAMPLE / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock


def mirrored_aws_versions(plugin_dir: str) -> list[str]:
    """The hashicorp/aws versions in the provider mirror (one directory per version)."""
    return sorted(p.name for p in (Path(plugin_dir) / "registry.terraform.io" / "hashicorp" / "aws").iterdir())


def test_module_validates_on_its_own_with_every_mirrored_provider(tmp_path: Path) -> None:
    """The module alone (no emulator files, no provider block) initialises offline from the provider mirror and
    validates, with each mirrored AWS provider version its constraint admits (5.x and 6.x lines as mirrored; the
    example's lock file pins the one deploy/local.sh uses)."""
    mirror = subprocess.run([str(LOCAL_SH), "tools"], capture_output=True, text=True, timeout=60)
    assert mirror.returncode == 0, f"{mirror.stderr} (`make terraform-tools` checks for terraform and the mirror)"
    plugin_dir = mirror.stdout.rsplit("provider mirror: ", 1)[1].strip()
    versions = [v for v in mirrored_aws_versions(plugin_dir) if v.split(".")[0] in ("5", "6")]
    assert versions, f"no AWS provider 5.x or 6.x in {plugin_dir}"
    for version in versions:
        workdir = tmp_path / version
        shutil.copytree(MODULE, workdir / "module")
        aws = f'aws = {{ source = "hashicorp/aws", version = "{version}" }}'
        pin = f"terraform {{\n  required_providers {{\n    {aws}\n  }}\n}}\n"
        (workdir / "main.tf").write_text(
            pin + 'module "rotaudit" {\n  source = "./module"\n  region = "us-east-1"\n  image = "x"\n}\n'
        )
        for command in (["init", "-backend=false", f"-plugin-dir={plugin_dir}"], ["validate"]):
            done = subprocess.run(
                ["terraform", f"-chdir={workdir}", *command, "-no-color"],
                env=terraform_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, version + done.stdout + done.stderr


def test_up_times_every_step(stack: Stack) -> None:
    """`local.sh up` prints the seconds each step took."""
    for step in (*STEPS_UP, "up total"):
        assert re.search(rf"^  {step} +\d+\.\d s$", stack.up_output, re.MULTILINE), step


def test_outputs_cover_what_provision_prints(stack: Stack, provisioned: dict[str, str]) -> None:
    """Every key `rotaudit provision` prints is a module output too, named with the stack's prefix."""
    assert set(provisioned) <= set(stack.outputs)
    for key in ("table_name", "rule_name", "label_rule_name", "cluster_name", "service_name"):
        assert stack.outputs[key].startswith(f"{stack.prefix}-") or stack.outputs[key] == stack.prefix


def test_table_matches_provision(stack: Stack, provisioned: dict[str, str]) -> None:
    """The audit table has provision's keys, indexes, billing, TTL attribute, PITR and SSE."""
    ours = table_shape(stack.endpoint, stack.outputs["table_name"])
    assert ours == table_shape(stack.endpoint, provisioned["table_name"])
    wanted = table_definition("x")
    assert ours["keys"] == wanted["KeySchema"]
    assert set(ours["indexes"]) == {i["IndexName"] for i in wanted["GlobalSecondaryIndexes"]}
    assert ours["ttl"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert (ours["billing"], ours["pitr"], ours["sse"]) == ("PAY_PER_REQUEST", "ENABLED", ("ENABLED", "KMS"))


def test_queues_match_provision(stack: Stack, provisioned: dict[str, str]) -> None:
    """Queue and DLQ have provision's visibility, retention, long polling, encryption and redrive count."""
    compared = ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "SqsManagedSseEnabled")
    for key in ("queue_url", "dlq_url"):
        ours, theirs = (queue_attributes(stack.endpoint, s[key]) for s in (stack.outputs, provisioned))
        assert {k: ours.get(k) for k in compared} == {k: theirs.get(k) for k in compared}, key
    redrive = json.loads(queue_attributes(stack.endpoint, stack.outputs["queue_url"])["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": stack.outputs["dlq_arn"], "maxReceiveCount": MAX_RECEIVE_COUNT}


def test_rules_match_provision(stack: Stack, provisioned: dict[str, str]) -> None:
    """Both stacks' rules carry the same event patterns and target their queue, undeliverables to their DLQ."""
    events = boto("events", stack.endpoint)
    patterns = (
        ("rule_name", rotation_event_pattern()),
        ("label_rule_name", label_event_pattern()),
        ("probe_rule_name", probe_pattern()),
    )
    for name_key, pattern in patterns:
        for source in (stack.outputs, provisioned):
            rule = events.describe_rule(Name=source[name_key])
            assert json.loads(rule["EventPattern"]) == pattern, source[name_key]
            assert rule["State"] == "ENABLED"
            (target,) = events.list_targets_by_rule(Rule=source[name_key])["Targets"]
            assert (target["Id"], target["Arn"]) == ("rotaudit-queue", source["queue_arn"])
            assert target["DeadLetterConfig"] == {"Arn": source["dlq_arn"]}


def test_queue_policies_admit_only_the_rules(stack: Stack, provisioned: dict[str, str]) -> None:
    """In both stacks, queue and DLQ admit EventBridge for the rules (and the probe's) and deny every other sender but
    the named."""
    for source in (stack.outputs, provisioned):
        rules = {source["rule_arn"], source["label_rule_arn"], source["probe_rule_arn"]}
        for url_key, arn_key in (("queue_url", "queue_arn"), ("dlq_url", "dlq_arn")):
            allow, deny = json.loads(queue_attributes(stack.endpoint, source[url_key])["Policy"])["Statement"]
            assert allow["Principal"] == {"Service": "events.amazonaws.com"}
            assert (allow["Effect"], allow["Action"]) == ("Allow", "sqs:SendMessage")
            assert allow["Resource"] == source[arn_key]
            assert set(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == rules
            assert (deny["Effect"], deny["Action"], deny["Resource"]) == ("Deny", "sqs:SendMessage", source[arn_key])
            assert deny["Principal"] in ("*", {"AWS": "*"})
            assert set(_as_list(deny["Condition"]["ArnNotEquals"]["aws:SourceArn"])) == rules
            assert _as_list(deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"])  # the task role at least


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_topics_match_provision(stack: Stack, provisioned: dict[str, str]) -> None:
    """Both topics are encrypted with the AWS-managed SNS key; the module's mails the configured address."""
    sns = boto("sns", stack.endpoint)
    for source in (stack.outputs, provisioned):
        attributes = sns.get_topic_attributes(TopicArn=source["topic_arn"])["Attributes"]
        assert attributes["KmsMasterKeyId"] == "alias/aws/sns", source["topic_arn"]
    subscribed = sns.list_subscriptions_by_topic(TopicArn=stack.outputs["topic_arn"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscribed] == [("email", "ops@example.com")]


def test_task_definition_is_a_daemon_config(stack: Stack) -> None:
    """The container's environment is a valid daemon config naming the stack; it runs read-only, non-root, drained."""
    ecs = boto("ecs", stack.endpoint)
    task = ecs.describe_task_definition(taskDefinition=stack.outputs["task_definition_arn"])["taskDefinition"]
    (container,) = task["containerDefinitions"]
    env = {item["name"]: item["value"] for item in container["environment"]}
    config = load_config(env)
    assert (config.queue_url, config.dlq_url) == (stack.outputs["queue_url"], stack.outputs["dlq_url"])
    assert (config.audit_table, config.sns_topic_arn) == (stack.outputs["table_name"], stack.outputs["topic_arn"])
    assert container["stopTimeout"] > config.drain_timeout_s
    assert container["readonlyRootFilesystem"] is True
    assert container["user"].split(":")[0] not in ("", "0", "root")
    assert "/healthz" in " ".join(container["healthCheck"]["command"])
    assert container["logConfiguration"]["options"]["awslogs-group"] == stack.outputs["log_group_name"]
    assert (task["requiresCompatibilities"], task["networkMode"]) == (["FARGATE"], "awsvpc")


def test_task_role_is_what_the_code_needs(stack: Stack) -> None:
    """The applied task role (inline policy only) grants exactly the actions derived from the daemon's calls for the
    stack's settings, secret writes behind the scan tag (tests/deploy/test_iam.py covers the other settings)."""
    iam = boto("iam", stack.endpoint)
    role = stack.outputs["task_role_arn"].rsplit("/", 1)[1]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    policy = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    expected = expected_actions(Deployment())  # tfvars: defaults, remediation in apply mode, no sync
    assert {"missing": sorted(expected - granted(policy)), "unused": sorted(granted(policy) - expected)} == {
        "missing": [],
        "unused": [],
    }
    tagged = {"StringEquals": {"secretsmanager:ResourceTag/Managed": "true"}}
    for action in ("secretsmanager:UpdateSecretVersionStage", "secretsmanager:RotateSecret"):
        assert [condition for _, condition in resources_for(policy, action)] == [tagged], action
    assert resources_for(policy, "secretsmanager:GetSecretValue") == []


def test_the_trail_logs_into_a_private_encrypted_bucket(stack: Stack) -> None:
    """With create_cloudtrail, a multi-region trail logs (the daemon's start-up check agrees) into a bucket that is
    encrypted, versioned, private and reachable only over TLS."""
    trails, s3 = boto("cloudtrail", stack.endpoint), boto("s3", stack.endpoint)
    (trail,) = trails.describe_trails(trailNameList=[stack.outputs["trail_arn"]])["trailList"]
    assert (trail["IsMultiRegionTrail"], trail["LogFileValidationEnabled"]) == (True, True)
    assert trails.get_trail_status(Name=stack.outputs["trail_arn"])["IsLogging"] is True
    bucket = stack.outputs["trail_bucket"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # no kms_key_arn given
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert {statement["Sid"] for statement in policy["Statement"]} == {
        "CloudTrailAclCheck",
        "CloudTrailWrite",
        "DenyInsecureTransport",
    }

    async def check() -> bool | None:
        metrics = Metrics()
        async with Aws(REGION, endpoint_url=stack.endpoint, metrics=metrics, services=("cloudtrail",)) as aws:
            return await check_cloudtrail(aws, metrics)

    assert asyncio.run(check()) is True


def test_service_runs_on_fargate_in_the_given_network(stack: Stack) -> None:
    """The service runs the task definition on Fargate, in the given subnets, without a public IP."""
    tfvars = json.loads((stack.workdir / "terraform.tfvars.json").read_text())
    ecs = boto("ecs", stack.endpoint)
    (service,) = ecs.describe_services(cluster=stack.outputs["cluster_name"], services=[stack.outputs["service_name"]])[
        "services"
    ]
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert (service["launchType"], service["desiredCount"]) == ("FARGATE", 1)
    assert service["taskDefinition"] == stack.outputs["task_definition_arn"]
    assert (sorted(network["subnets"]), network["assignPublicIp"]) == (sorted(tfvars["subnet_ids"]), "DISABLED")
    groups = boto("logs", stack.endpoint).describe_log_groups(logGroupNamePrefix=stack.outputs["log_group_name"])
    assert groups["logGroups"][0]["retentionInDays"] == 365


def test_alarms_notify_the_topic_and_queries_read_the_daemons_logs(stack: Stack) -> None:
    """The CloudWatch alarms watch the DLQ, the service's tasks, and the daemon's log metrics, notifying the topic;
    the saved Logs Insights queries read the daemon's log group."""
    prefix, outputs = stack.prefix, stack.outputs
    alarms = boto("cloudwatch", stack.endpoint).describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]
    by_name = {alarm["AlarmName"].removeprefix(f"{prefix}-"): alarm for alarm in alarms}
    assert set(by_name) == {"dlq-depth", "dlq-age", "tasks-below-desired", "daemon-errors", "failed-remediations"}
    assert set(outputs["alarm_arns"]) == {alarm["AlarmName"] for alarm in alarms}
    for alarm in alarms:
        assert alarm["AlarmActions"] == [outputs["topic_arn"]], alarm["AlarmName"]
    dlq_name = outputs["dlq_url"].rsplit("/", 1)[1]
    for name in ("dlq-depth", "dlq-age"):
        assert by_name[name]["Namespace"] == "AWS/SQS"
        assert by_name[name]["Dimensions"] == [{"Name": "QueueName", "Value": dlq_name}]
    tasks = {q["Id"]: q for q in by_name["tasks-below-desired"]["Metrics"]}
    assert tasks["missing"]["Expression"] == "desired - running"
    for query_id, metric in (("desired", "DesiredTaskCount"), ("running", "RunningTaskCount")):
        watched = tasks[query_id]["MetricStat"]["Metric"]
        assert (watched["Namespace"], watched["MetricName"]) == ("ECS/ContainerInsights", metric)
        dimensions = {d["Name"]: d["Value"] for d in watched["Dimensions"]}
        assert dimensions == {"ClusterName": outputs["cluster_name"], "ServiceName": outputs["service_name"]}
    logs = boto("logs", stack.endpoint)
    filters = logs.describe_metric_filters(logGroupName=outputs["log_group_name"])["metricFilters"]
    metrics = {f["metricTransformations"][0]["metricName"]: f["filterPattern"] for f in filters}
    assert set(metrics) == {by_name["daemon-errors"]["MetricName"], by_name["failed-remediations"]["MetricName"]}
    assert '"remediation.failed"' in metrics[by_name["failed-remediations"]["MetricName"]]
    queries = logs.describe_query_definitions(queryDefinitionNamePrefix=f"{prefix}/")["queryDefinitions"]
    assert {q["name"] for q in queries} == {
        f"{prefix}/{name}" for name in ("event-path", "rejections-by-reason", "remediations-needing-a-human", "errors")
    }
    assert all(q["logGroupNames"] == [outputs["log_group_name"]] for q in queries)
    assert set(outputs["query_definition_ids"]) == {q["name"] for q in queries}


def test_leftover_check_sees_every_kind_of_resource(stack: Stack) -> None:
    """Before `down`, the leftover check finds every kind of resource the stack made (so a clean result means it)."""
    assert {kind for kind, _ in leftovers(stack.endpoint, stack.prefix)} == EVERY_KIND


def test_other_accounts_may_put_only_secrets_manager_events_on_the_bus(stack: Stack) -> None:
    """event_sources' other accounts get events:PutEvents on the stack's default bus, for aws.secretsmanager only."""
    bus = boto("events", stack.endpoint).describe_event_bus(Name="default")
    (statement,) = json.loads(bus["Policy"])["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
        "Allow",
        "events:PutEvents",
        stack.outputs["event_bus_arn"],
    )
    assert FORWARDING_ACCOUNT in json.dumps(statement["Principal"])
    assert statement["Condition"] == {"StringEquals": {"events:source": "aws.secretsmanager"}}


FORWARDER = TERRAFORM / "modules" / "forward-events"
SOURCE_REGION = "eu-west-1"


def test_another_regions_events_reach_the_queue_through_a_forwarder(stack: Stack, tmp_path: Path) -> None:
    """modules/forward-events in another region puts its Secrets Manager events on the stack's bus, whose rules
    deliver them to the queue. As far as moto goes: its bus-to-bus target re-puts only source, detail-type and
    detail (AWS keeps the whole event, with its own region and account), and it enforces no IAM."""
    shutil.copytree(FORWARDER, tmp_path / "forward-events")
    provider = "\n".join(
        [
            'provider "aws" {',
            f'  region = "{SOURCE_REGION}"',
            '  access_key = "testing"',
            '  secret_key = "testing"',
            "  skip_credentials_validation = true",
            "  skip_requesting_account_id = true",
            "  skip_metadata_api_check = true",
            "  endpoints {",
            *(f'    {service} = "{stack.endpoint}"' for service in ("events", "iam", "sts")),
            "  }",
            "}",
        ]
    )
    module = {
        "source": "./forward-events",
        "name_prefix": stack.prefix,
        "target_event_bus_arn": stack.outputs["event_bus_arn"],
        "event_patterns": stack.outputs["event_patterns"],
    }
    body = "\n".join(f"  {key} = {json.dumps(value)}" for key, value in module.items())
    (tmp_path / "main.tf").write_text(f'{provider}\n\nmodule "forward" {{\n{body}\n}}\n')
    mirror = subprocess.run([str(LOCAL_SH), "tools"], capture_output=True, text=True, timeout=60)
    plugin_dir = mirror.stdout.rsplit("provider mirror: ", 1)[1].strip()

    def terraform(*args: str) -> None:
        done = subprocess.run(
            ["terraform", f"-chdir={tmp_path}", *args, "-input=false", "-no-color"],
            env=terraform_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    terraform("init", f"-plugin-dir={plugin_dir}")
    terraform("apply", "-auto-approve")
    try:
        secret = f"arn:aws:secretsmanager:{SOURCE_REGION}:123456789012:secret:forwarded-{uuid.uuid4().hex[:6]}-AbCdEf"
        event = build_event("RotationFailed", secret)
        entry = {k: v for k, v in (("Source", event["source"]), ("DetailType", event["detail-type"])) if v}
        entry["Detail"] = json.dumps(event["detail"])
        assert boto_in(SOURCE_REGION, "events", stack.endpoint).put_events(Entries=[entry])["FailedEntryCount"] == 0
        sqs = boto("sqs", stack.endpoint)

        def arrived() -> list[dict[str, Any]]:
            got = sqs.receive_message(QueueUrl=stack.outputs["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
            bodies = [json.loads(message["Body"]) for message in got.get("Messages", [])]
            return [
                body
                for body in bodies
                if body.get("detail", {}).get("additionalEventData", {}).get("SecretId") == secret
            ]

        (forwarded,) = wait_until(arrived, timeout_s=30)
        parsed = parse_message(json.dumps(forwarded))
        assert isinstance(parsed, RotationEvent), parsed
        assert (parsed.event_name, parsed.secret_arn) == ("RotationFailed", secret)
    finally:
        terraform("destroy", "-auto-approve")


def test_plan_after_apply_is_empty(stack: Stack) -> None:
    """A second plan finds nothing to change: what the module writes is what AWS (and the emulator) reads back."""
    done = subprocess.run(
        ["terraform", f"-chdir={stack.workdir}", "plan", "-detailed-exitcode", "-input=false", "-no-color"],
        env=terraform_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


def test_local_scenarios_pass(stack: Stack) -> None:
    """`local.sh test`: the schedule is the configured one, the check flags the stale secret, rows are complete."""
    done = local_sh(stack.env, "test")
    assert done.returncode == 0, done.stdout + done.stderr
    for scenario in ("A schedule is configured", "B check flags managed secrets", "C audit rows carry status"):
        assert f"PASS {scenario}" in done.stdout, scenario


def test_down_leaves_nothing_behind(stack: Stack) -> None:
    """`local.sh down` destroys the stack, finds nothing with its prefix, and stops the emulator it started."""
    done = local_sh(stack.env, "down")
    stack.torn_down = True
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"clean: nothing left behind for '{stack.prefix}'" in done.stdout
    assert re.search(r"^  down total +\d+\.\d s$", done.stdout, re.MULTILINE)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(stack.env["ROTAUDIT_LOCAL_PORT"]))) != 0
    assert not (stack.workdir / "terraform.tfstate").exists()
    assert ROOT.joinpath("deploy", "terraform", ".terraform").exists() is False


def boto_in(region: str, service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint)
