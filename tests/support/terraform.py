"""The Terraform stack on the emulator: inputs, demo secrets, the tutorial's three scenarios, and leftover checks.

Shared by tests/deploy/test_terraform.py and deploy/local.sh (`python -m tests.support.terraform CMD`), so the
developer loop and the test check the same things. Every AWS call goes to the emulator over HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support import FAKE_CREDENTIALS, REGION, ROOT, boto, rotaudit_cmd

TERRAFORM = ROOT / "deploy" / "terraform"
MODULE = TERRAFORM / "modules" / "rotaudit"  # the reusable module: no provider block
EXAMPLE = TERRAFORM / "examples" / "complete"  # the root deploy/local.sh applies
LOCAL_SH = ROOT / "deploy" / "local.sh"
# name suffix -> tags: two secrets the scan checks, one it must ignore (the tutorial's three).
FORWARDING_ACCOUNT = "210987654321"  # an account the stack accepts forwarded events from
DEMO_SECRETS = {"fresh": {"Managed": "true"}, "stale": {"Managed": "true"}, "ignored": {"Managed": "false"}}


def default_network(endpoint: str) -> dict[str, list[str]]:
    """Subnets and the default security group of the emulator's default VPC (moto creates one per region)."""
    ec2 = boto("ec2", endpoint)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    subnets = ec2.describe_subnets(Filters=in_vpc)["Subnets"]
    groups = ec2.describe_security_groups(Filters=[*in_vpc, {"Name": "group-name", "Values": ["default"]}])
    return {
        "subnet_ids": sorted(s["SubnetId"] for s in subnets)[:2],
        "security_group_ids": [g["GroupId"] for g in groups["SecurityGroups"]],
    }


def tfvars(endpoint: str, prefix: str, schedule: str) -> dict[str, Any]:
    """The module's inputs for a throw-away stack on the emulator (ECS tasks never run there)."""
    return {
        "emulator_endpoint": endpoint,
        "name_prefix": prefix,
        "region": REGION,
        "image": "rotaudit:local",
        "scan_schedule": schedule,
        "alert_emails": ["ops@example.com"],
        "table_deletion_protection": False,
        "rotation_function_arns": [f"arn:aws:lambda:{REGION}:123456789012:function:{prefix}-rotation"],
        "create_cloudtrail": True,  # off by default; on here, so the loop builds and tears down the trail too
        # Forwarding from another account and another region: the bus policy admits the other account.
        "event_sources": [{"account_id": FORWARDING_ACCOUNT, "regions": ["eu-west-1"]}, {"regions": ["eu-west-1"]}],
        # The demo's stale secret is a rotation stuck a moment ago (see `seed`): no grace for a rotation in progress.
        "extra_environment": {"ROTAUDIT_SCAN_PENDING_GRACE_MINUTES": "0"},
        **default_network(endpoint),
    }


def seed(endpoint: str, prefix: str) -> dict[str, str]:
    """Create the demo secrets; `stale` gets a dangling AWSPENDING version, the state of a rotation stuck midway.

    The emulator cannot age a secret from outside its process (AWS-FACTS §7), so a stuck rotation, which the
    scan flags as `stuck_pending` (the stack sets the grace for rotations in progress to 0, see `tfvars`), stands
    in for an old one. The values are throwaway strings, never printed.
    """
    sm = boto("secretsmanager", endpoint)
    arns = {}
    for suffix, tags in DEMO_SECRETS.items():
        name = f"{prefix}-{suffix}"
        created = sm.create_secret(
            Name=name, SecretString=f"demo-{uuid.uuid4()}", Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
        arns[name] = created["ARN"]
    sm.put_secret_value(SecretId=f"{prefix}-stale", SecretString=f"demo-{uuid.uuid4()}", VersionStages=["AWSPENDING"])
    return arns


def unseed(endpoint: str, prefix: str) -> None:
    """Delete the demo secrets at once (no recovery window), so the next `up` can reuse the names."""
    sm = boto("secretsmanager", endpoint)
    for suffix in DEMO_SECRETS:
        with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
            sm.delete_secret(SecretId=f"{prefix}-{suffix}", ForceDeleteWithoutRecovery=True)


def delete_trail(endpoint: str, prefix: str) -> None:
    """Delete the stack's trail by name before `terraform destroy`, which deletes it by ARN: AWS's DeleteTrail takes
    either, moto 5.2's only a name and ignores an ARN, so on the emulator the trail would outlive the stack.
    (An emulator gap to patch in daemon/devtools/patches/; AWS needs none of this.)"""
    trails = boto("cloudtrail", endpoint)
    for trail in trails.describe_trails()["trailList"]:
        if _ours(trail["Name"], prefix):
            trails.delete_trail(Name=trail["Name"])


def _ours(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}-")


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    return [item for page in client.get_paginator(operation).paginate(**params) for item in page.get(key, [])]


def leftovers(endpoint: str, prefix: str) -> list[tuple[str, str]]:
    """(kind, name) of everything on the emulator that belongs to the stack `prefix` (empty once it is down)."""
    sqs, ddb, sns, events = (boto(s, endpoint) for s in ("sqs", "dynamodb", "sns", "events"))
    trails, s3 = boto("cloudtrail", endpoint), boto("s3", endpoint)
    ecs, iam, logs, sm = (boto(s, endpoint) for s in ("ecs", "iam", "logs", "secretsmanager"))
    queues = _pages(sqs, "list_queues", "QueueUrls", QueueNamePrefix=prefix)
    found = [("queue", url.rsplit("/", 1)[1]) for url in queues]
    found += [("table", name) for name in _pages(ddb, "list_tables", "TableNames")]
    topics = [t["TopicArn"] for t in _pages(sns, "list_topics", "Topics")]
    found += [("topic", arn.rsplit(":", 1)[1]) for arn in topics]
    ours_topics = {arn for arn in topics if _ours(arn.rsplit(":", 1)[1], prefix)}
    subscriptions = _pages(sns, "list_subscriptions", "Subscriptions")
    found += [("subscription", s["Endpoint"]) for s in subscriptions if s["TopicArn"] in ours_topics]
    found += [("rule", r["Name"]) for r in _pages(events, "list_rules", "Rules", NamePrefix=prefix)]
    for cluster in ecs.describe_clusters(clusters=_pages(ecs, "list_clusters", "clusterArns"))["clusters"]:
        if cluster["status"] == "ACTIVE" and _ours(cluster["clusterName"], prefix):
            found.append(("cluster", cluster["clusterName"]))
            services = _pages(ecs, "list_services", "serviceArns", cluster=cluster["clusterArn"])
            found += [("service", arn.rsplit("/", 1)[1]) for arn in services]
    # A destroyed task definition stays, INACTIVE (AWS and moto alike); moto ignores the families' status filter.
    for family in _pages(ecs, "list_task_definition_families", "families", familyPrefix=prefix):
        active = _pages(ecs, "list_task_definitions", "taskDefinitionArns", familyPrefix=family, status="ACTIVE")
        found += [("task-definition", arn.rsplit("/", 1)[1]) for arn in active]
    found += [("role", r["RoleName"]) for r in _pages(iam, "list_roles", "Roles")]
    groups = _pages(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=f"/ecs/{prefix}")
    found += [("log-group", g["logGroupName"]) for g in groups]
    found += [("trail", t["Name"]) for t in trails.describe_trails(includeShadowTrails=True)["trailList"]]
    found += [("bucket", b["Name"]) for b in s3.list_buckets().get("Buckets", [])]
    secrets = _pages(sm, "list_secrets", "SecretList", Filters=[{"Key": "name", "Values": [prefix]}])
    found += [("secret", s["Name"]) for s in secrets]
    alarms = _pages(boto("cloudwatch", endpoint), "describe_alarms", "MetricAlarms", AlarmNamePrefix=prefix)
    found += [("alarm", a["AlarmName"]) for a in alarms]
    found += [("metric-filter", f["filterName"]) for f in _pages(logs, "describe_metric_filters", "metricFilters")]
    queries = logs.describe_query_definitions(queryDefinitionNamePrefix=f"{prefix}/")["queryDefinitions"]
    found += [("query", q["name"].replace("/", "-", 1)) for q in queries]  # saved as "prefix/name"
    # Listings filter by a raw prefix (or not at all): keep names that are the prefix or start with "prefix-".
    return sorted(
        (kind, name) for kind, name in found if kind == "subscription" or _ours(name.removeprefix("/ecs/"), prefix)
    )


# --- the tutorial's three scenarios ------------------------------------------------------------------------
def task_environment(endpoint: str, outputs: dict[str, Any]) -> dict[str, str]:
    """The daemon container's environment, as ECS would start it (read back from the task definition)."""
    described = boto("ecs", endpoint).describe_task_definition(taskDefinition=outputs["task_definition_arn"])
    (container,) = described["taskDefinition"]["containerDefinitions"]
    return {item["name"]: item["value"] for item in container["environment"]}


def _run_rotaudit(endpoint: str, outputs: dict[str, Any], *args: str) -> Any:
    """`rotaudit ARGS` with the task definition's settings, pointed at the emulator; its stdout as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env |= FAKE_CREDENTIALS | task_environment(endpoint, outputs)
    env |= {"AWS_ENDPOINT_URL": endpoint, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    done = subprocess.run(rotaudit_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"rotaudit {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def scenario_schedule(endpoint: str, outputs: dict[str, Any], prefix: str, schedule: str) -> str:
    """A: the scan schedule the daemon will run is the one configured, and the daemon can parse it."""
    from daemon.timer import parse_schedule

    env = task_environment(endpoint, outputs)
    assert env.get("ROTAUDIT_SCAN_SCHEDULE") == schedule, env.get("ROTAUDIT_SCAN_SCHEDULE")
    assert env.get("ROTAUDIT_SCAN_ENABLED", "true") == "true"
    parse_schedule(env["ROTAUDIT_SCAN_SCHEDULE"])
    return f"scan schedule {schedule!r}, max age {env['ROTAUDIT_MAX_AGE_DAYS']} days, tag {env['ROTAUDIT_SCAN_TAG']}"


def scenario_check(endpoint: str, outputs: dict[str, Any], prefix: str, schedule: str) -> str:
    """B: a rotation check (`rotaudit scan --once`) flags the stale secret, passes the fresh one, skips the other."""
    summary = _run_rotaudit(endpoint, outputs, "scan", "--output", "json")
    report = _run_rotaudit(endpoint, outputs, "report", "--run", summary["run_id"], "--output", "json")
    status = {row["secret_name"]: row["status"] for row in report["secrets"] if _ours(row["secret_name"], prefix)}
    expected = {f"{prefix}-fresh": "ok", f"{prefix}-stale": "needs_rotation"}
    assert status == expected, f"scan statuses {status}, expected {expected}"
    assert summary["checked"] >= 2, summary
    assert summary["flagged"] >= 1, summary
    return f"run {summary['run_id']}: checked {summary['checked']}, flagged {summary['flagged']}; {status}"


def scenario_rows(endpoint: str, outputs: dict[str, Any], prefix: str, schedule: str) -> str:
    """C: each audit row of the latest run carries a status and an ISO-8601 UTC timestamp; none for the ignored."""
    report = _run_rotaudit(endpoint, outputs, "report", "--output", "json")
    rows = [row for row in report["secrets"] if _ours(row["secret_name"], prefix)]
    assert {row["secret_name"] for row in rows} == {f"{prefix}-fresh", f"{prefix}-stale"}, rows
    for row in rows:
        assert row["status"] in ("ok", "needs_rotation"), row
        offset = datetime.fromisoformat(row["checked_at"].replace("Z", "+00:00")).utcoffset()
        assert offset is not None, row
        assert offset.total_seconds() == 0, row
    return "; ".join(f"{r['secret_name']} {r['status']} at {r['checked_at']}" for r in rows)


SCENARIOS: tuple[tuple[str, Callable[[str, dict[str, Any], str, str], str]], ...] = (
    ("A schedule is configured", scenario_schedule),
    ("B check flags managed secrets", scenario_check),
    ("C audit rows carry status and timestamp", scenario_rows),
)


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.support.terraform {tfvars,seed,unseed,delete-trail,scenarios,leftovers}` for deploy/local.sh."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.terraform")
    parser.add_argument("command", choices=("tfvars", "seed", "unseed", "delete-trail", "scenarios", "leftovers"))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--schedule", default="rate(1 hour)")
    parser.add_argument("--outputs", type=Path, help="`terraform output -json` of the stack")
    args = parser.parse_args(argv)
    if args.command == "tfvars":
        print(json.dumps(tfvars(args.endpoint, args.prefix, args.schedule), indent=2))
    elif args.command == "seed":
        print(f"seeded {', '.join(seed(args.endpoint, args.prefix))}")
    elif args.command == "unseed":
        unseed(args.endpoint, args.prefix)
    elif args.command == "delete-trail":
        delete_trail(args.endpoint, args.prefix)
    elif args.command == "leftovers":
        left = leftovers(args.endpoint, args.prefix)
        for kind, name in left:
            print(f"  left behind: {kind} {name}")
        print(f"  {'clean: nothing left behind' if not left else f'{len(left)} resources left'} for {args.prefix!r}")
        return 1 if left else 0
    else:
        outputs = {k: v["value"] for k, v in json.loads(args.outputs.read_text()).items()}
        failed = 0
        for title, scenario in SCENARIOS:
            try:
                print(f"  PASS {title}: {scenario(args.endpoint, outputs, args.prefix, args.schedule)}", flush=True)
            except AssertionError as exc:
                failed += 1
                print(f"  FAIL {title}: {exc}", flush=True)
        print(f"  scenarios: {len(SCENARIOS) - failed} of {len(SCENARIOS)} as expected")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
