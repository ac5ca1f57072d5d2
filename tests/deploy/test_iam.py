"""The task role Terraform renders is exactly what the daemon's code needs, for every kind of deployment.

`tests.support.iam` derives the IAM actions from the daemon's own AWS calls. Here deploy/terraform/modules/rotaudit
is planned once with one module instance per deployment (features on and off, the lists that widen the role set and
not), against the embedded emulator (the plan reads the account from STS); each instance's task policy, read from
`terraform show -json`, must grant every derived action and nothing else, with values readable only on sync pairs,
secret writes behind the scan tag or on sync targets, and table updates and deletes held to their partitions.
`tests/deploy/test_terraform.py` checks the applied default stack's policy the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from daemon.devtools.emulator import Emulator
from tests.support.iam import (
    Deployment,
    as_set,
    expected_actions,
    expected_leading_keys,
    granted,
    resources_for,
    statements,
)
from tests.support.terraform import LOCAL_SH, MODULE, TERRAFORM

ACCOUNT, REGION = "123456789012", "us-east-1"
SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
ROTATION_FUNCTIONS = [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rotate-*"]
PAIRS = [
    {"name": "orders", "source": "rds!db-0123", "target": "orders/DATABASE_URL", "ecs_services": ["prod/orders"]},
    {"name": "billing", "source": f"{SECRETS}rds!db-4567-AbCdEf", "target": f"{SECRETS}billing/url-GhIjKl"},
]
SYNC_SOURCES = {f"{SECRETS}rds!db-0123-??????", f"{SECRETS}rds!db-4567-AbCdEf"}
SYNC_TARGETS = {f"{SECRETS}orders/DATABASE_URL-??????", f"{SECRETS}billing/url-GhIjKl"}
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
UNSCOPED = {"secretsmanager:ListSecrets", "cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"}

# module instance -> (what the derivation needs to know, the module's inputs)
DEPLOYMENTS: dict[str, tuple[Deployment, dict[str, Any]]] = {
    "defaults": (Deployment(), {"rotation_function_arns": ROTATION_FUNCTIONS}),
    "everything": (
        Deployment(
            sync=True,
            scan_roles=True,
            ecs_services=True,
            automation_documents=True,
            secrets_kms=True,
            stack_kms=True,
            securityhub=True,
        ),
        {
            "rotation_function_arns": ROTATION_FUNCTIONS,
            "sync_pairs": PAIRS,
            "scan_targets": [
                {"role_arn": "arn:aws:iam::210987654321:role/rotaudit-scan"},
                {"regions": [REGION, "eu-west-1"]},
            ],
            "automation_document_arns": [f"arn:aws:ssm:{REGION}:{ACCOUNT}:automation-definition/restart:$DEFAULT"],
            "secrets_kms_key_arns": [KEY],
            "kms_key_arn": KEY,
            "securityhub_findings": True,
        },
    ),
    "dry_run_sync": (
        Deployment(remediation_mode="dry-run", sync=True),
        {"remediation_mode": "dry-run"}
        | {"sync_pairs": [{k: v for k, v in pair.items() if k != "ecs_services"} for pair in PAIRS]},
    ),
    "minimal": (
        Deployment(remediation_mode="off", scan_enabled=False),
        {"remediation_mode": "off"} | {"scan_enabled": False},
    ),
}


def _plugin_dir() -> str:
    mirror = subprocess.run([str(LOCAL_SH), "tools"], capture_output=True, text=True, timeout=60)
    assert mirror.returncode == 0, f"{mirror.stderr} (`make terraform-tools` checks for terraform and the mirror)"
    return mirror.stdout.rsplit("provider mirror: ", 1)[1].strip()


def _terraform(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "GOGC": "400"}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    if not Path(env.get("TF_CLI_CONFIG_FILE", os.devnull)).exists():
        env.pop("TF_CLI_CONFIG_FILE", None)
    done = subprocess.run(
        ["terraform", f"-chdir={workdir}", *args, "-no-color"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def policies(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each deployment's task policy document, as `terraform plan` renders it."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH; `make terraform-tools` checks for it and the provider mirror")
    workdir = tmp_path_factory.mktemp("iam")
    shutil.copytree(MODULE, workdir / "module")
    for path in (TERRAFORM / "emulator").glob("*.tf"):  # merged over the root's provider block below
        shutil.copy(path, workdir)
    (workdir / "terraform.tfvars.json").write_text(json.dumps({"emulator_endpoint": emulator.endpoint_url}))
    blocks = [f'provider "aws" {{\n  region = "{REGION}"\n}}\n']
    for name, (_, inputs) in DEPLOYMENTS.items():
        values = {
            "name_prefix": f"iam-{name.replace('_', '-')}",
            "region": REGION,
            "image": "rotaudit:iam",
            "subnet_ids": ["subnet-00000000"],
            "security_group_ids": ["sg-00000000"],
            **inputs,
        }
        body = "\n".join(f"  {key} = {json.dumps(value)}" for key, value in values.items())
        blocks.append(f'module "{name}" {{\n  source = "./module"\n{body}\n}}\n')
    (workdir / "main.tf").write_text("\n".join(blocks))
    _terraform(workdir, "init", "-backend=false", f"-plugin-dir={_plugin_dir()}")
    _terraform(workdir, "plan", "-out=plan.bin", "-refresh=false")
    shown = json.loads(_terraform(workdir, "show", "-json", "plan.bin").stdout)
    found: dict[str, dict[str, Any]] = {}
    for child in shown["planned_values"]["root_module"]["child_modules"]:
        for resource in child["resources"]:
            if resource["address"].endswith("aws_iam_role_policy.task"):
                found[child["address"].removeprefix("module.")] = json.loads(resource["values"]["policy"])
    assert set(found) == set(DEPLOYMENTS), "a task policy is not known at plan time"
    return found


@pytest.mark.parametrize("name", list(DEPLOYMENTS))
def test_the_role_grants_what_the_code_calls_and_nothing_more(policies: dict[str, dict[str, Any]], name: str) -> None:
    """Every action derived from the daemon's calls is granted; every action granted is one the code needs."""
    deployment = DEPLOYMENTS[name][0]
    expected, actual = expected_actions(deployment), granted(policies[name])
    assert {"missing": sorted(expected - actual), "unused": sorted(actual - expected)} == {"missing": [], "unused": []}


@pytest.mark.parametrize("name", list(DEPLOYMENTS))
def test_values_are_readable_only_on_sync_pairs(policies: dict[str, dict[str, Any]], name: str) -> None:
    """GetSecretValue on the pairs' sources and targets only; PutSecretValue on targets only; none without sync."""
    policy, deployment = policies[name], DEPLOYMENTS[name][0]
    reads = resources_for(policy, "secretsmanager:GetSecretValue")
    writes = resources_for(policy, "secretsmanager:PutSecretValue")
    if not deployment.sync:
        assert (reads, writes) == ([], [])
        return
    assert reads == [(SYNC_SOURCES | SYNC_TARGETS, {})]
    assert writes == [(SYNC_TARGETS, {})]


@pytest.mark.parametrize("name", list(DEPLOYMENTS))
def test_label_moves_are_on_sync_targets_or_behind_the_scan_tag(policies: dict[str, dict[str, Any]], name: str) -> None:
    """UpdateSecretVersionStage: the sync write on its targets; remediation's (apply only) and RotateSecret on tagged
    secrets of this account and region; lambda:InvokeFunction on the rotation functions given."""
    policy, deployment = policies[name], DEPLOYMENTS[name][0]
    tagged = {"StringEquals": {"secretsmanager:ResourceTag/Managed": "true"}}
    expected_moves = []
    if deployment.remediation_mode == "apply":
        expected_moves.append(({f"{SECRETS}*"}, tagged))
        assert resources_for(policy, "secretsmanager:RotateSecret") == [({f"{SECRETS}*"}, tagged)]
        assert resources_for(policy, "lambda:InvokeFunction") == [(set(ROTATION_FUNCTIONS), {})]
    if deployment.sync:
        expected_moves.append((SYNC_TARGETS, {}))
    moves = resources_for(policy, "secretsmanager:UpdateSecretVersionStage")
    assert sorted(moves, key=repr) == sorted(expected_moves, key=repr)


@pytest.mark.parametrize("name", list(DEPLOYMENTS))
def test_table_updates_and_deletes_keep_to_their_partitions(policies: dict[str, dict[str, Any]], name: str) -> None:
    """UpdateItem and DeleteItem are limited by dynamodb:LeadingKeys to the partitions the code writes that way."""
    policy = policies[name]
    limits = expected_leading_keys(DEPLOYMENTS[name][0])
    for action in ("dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        found = resources_for(policy, action)
        if action not in limits:
            assert found == []
            continue
        ((_, condition),) = found
        assert set(condition) == {"ForAllValues:StringLike"}
        assert as_set(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]) == limits[action]


@pytest.mark.parametrize("name", list(DEPLOYMENTS))
def test_only_unscopable_actions_name_every_resource(policies: dict[str, dict[str, Any]], name: str) -> None:
    """A statement on "*" holds only actions AWS cannot scope (ListSecrets, DescribeTrails, GetTrailStatus); every
    KMS grant is held to the services that use the key."""
    for statement in statements(policies[name]):
        actions = as_set(statement["Action"])
        if "*" in as_set(statement["Resource"]):
            assert actions <= UNSCOPED, actions
        if any(action.startswith("kms:") for action in actions):
            assert "kms:ViaService" in statement["Condition"]["StringEquals"], statement


@pytest.mark.parametrize("name", list(DEPLOYMENTS))
def test_security_hub_is_held_to_this_accounts_product_and_hub(policies: dict[str, dict[str, Any]], name: str) -> None:
    """Findings are imported only through this account's default product and read only from its hub; neither
    without securityhub_findings."""
    policy, deployment = policies[name], DEPLOYMENTS[name][0]
    imports = resources_for(policy, "securityhub:BatchImportFindings")
    reads = resources_for(policy, "securityhub:GetFindings")
    if not deployment.securityhub:
        assert (imports, reads) == ([], [])
        return
    assert imports == [({f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"}, {})]
    assert reads == [({f"arn:aws:securityhub:{REGION}:{ACCOUNT}:hub/default"}, {})]
