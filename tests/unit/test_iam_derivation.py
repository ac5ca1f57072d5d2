"""The derivation of the task role's actions from the daemon's code (tests/support/iam.py), which tests/deploy holds
the Terraform policy to: it sees every call, follows helpers, maps each operation as AWS documents, and knows which
configuration needs which action."""

from __future__ import annotations

import pytest

from tests.support.iam import (
    AwsCall,
    Deployment,
    calls_in_source,
    daemon_calls,
    daemon_modules,
    expected_actions,
    iam_actions,
)


def test_every_call_of_the_daemon_maps_to_iam_actions() -> None:
    """Each call site resolves to an operation of its service (botocore's model knows it) and to IAM actions."""
    calls = daemon_calls()
    assert len(calls) > 40
    assert {call.service for call in calls} >= {"sqs", "dynamodb", "secretsmanager", "sns", "cloudtrail", "sts"}
    for call in calls:
        assert call.actions or (call.service, call.operation) == ("sts", "get_caller_identity"), call


def test_only_the_daemons_code_counts() -> None:
    """Operator commands (provision, emit, the DLQ tools, the CLI) run with an operator's credentials: not included."""
    modules = daemon_modules()
    assert {"daemon.app", "daemon.consumer", "daemon.scan.scanner", "daemon.sync.secrets"} <= modules
    assert {"daemon.provision", "daemon.emit", "daemon.dlq.replay", "daemon.dlq.reader", "daemon.cli"}.isdisjoint(
        modules
    )
    assert not any(module.startswith("daemon.devtools") for module in modules)


@pytest.mark.parametrize(
    ("service", "operation", "parts", "expected"),
    [
        ("sqs", "send_message_batch", (), {"sqs:SendMessage"}),
        ("sqs", "change_message_visibility_batch", (), {"sqs:ChangeMessageVisibility"}),
        (
            "dynamodb",
            "transact_write_items",
            ("Put", "Update", "Delete"),
            {"dynamodb:PutItem", "dynamodb:UpdateItem"} | {"dynamodb:DeleteItem"},
        ),
        ("dynamodb", "batch_write_item", (), {"dynamodb:BatchWriteItem"}),
        ("secretsmanager", "rotate_secret", (), {"secretsmanager:RotateSecret", "lambda:InvokeFunction"}),
        ("sts", "get_caller_identity", (), set()),
        ("cloudtrail", "get_trail_status", (), {"cloudtrail:GetTrailStatus"}),
    ],
)
def test_operations_map_to_the_actions_aws_documents(
    service: str, operation: str, parts: tuple[str, ...], expected: set[str]
) -> None:
    """Batches authorize as the single action, a transaction as its parts, RotateSecret also invokes Lambda."""
    assert iam_actions(service, operation, parts) == expected


def test_a_new_call_is_picked_up_without_touching_the_map() -> None:
    """A call added to a feature shows up with its action and feature; one through a helper is followed too."""
    source = """
async def refresh(aws):
    await aws.call("secretsmanager", "get_resource_policy", SecretId="s")

async def _kms(aws, operation, **params):
    return await aws.call_once("kms", operation, **params)

async def use(aws):
    await _kms(aws, "decrypt", CiphertextBlob=b"x")
    await _kms(aws, operation="generate_data_key", KeyId="k")
"""
    calls = calls_in_source("daemon.sync.newthing", source)
    assert {(call.feature, action) for call in calls for action in call.actions} == {
        ("sync", "secretsmanager:GetResourcePolicy"),
        ("sync", "kms:Decrypt"),
        ("sync", "kms:GenerateDataKey"),
    }


def test_an_operation_that_cannot_be_resolved_fails_loudly() -> None:
    """A call whose operation is computed elsewhere cannot be mapped: the walk says where, not silently skips it."""
    with pytest.raises(ValueError, match="line 3"):
        calls_in_source(
            "daemon.x", 'async def f(aws, names):\n    for name in names:\n        await aws.call("sqs", name)\n'
        )


def _call(feature: str, service: str, operation: str) -> AwsCall:
    return AwsCall(f"daemon.{feature}.m", 1, feature, service, operation)


CALLS = [
    _call("remediation", "secretsmanager", "rotate_secret"),
    _call("remediation", "secretsmanager", "describe_secret"),
    _call("remediation", "ssm", "start_automation_execution"),
    _call("sync", "secretsmanager", "get_secret_value"),
    _call("sync", "secretsmanager", "put_secret_value"),
    _call("sync", "ecs", "update_service"),
    _call("scan", "sts", "assume_role"),
    _call("scan", "dynamodb", "update_item"),
    _call("findings", "securityhub", "batch_import_findings"),
    _call("findings", "securityhub", "get_findings"),
    _call("findings", "sts", "get_caller_identity"),
]


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (
            Deployment(),
            {"secretsmanager:RotateSecret", "lambda:InvokeFunction", "secretsmanager:DescribeSecret"}
            | {"dynamodb:UpdateItem"},
        ),
        (Deployment(remediation_mode="dry-run", scan_enabled=False), {"secretsmanager:DescribeSecret"}),
        (
            Deployment(remediation_mode="off", scan_enabled=False, sync=True),
            {"secretsmanager:GetSecretValue"} | {"secretsmanager:PutSecretValue"},
        ),
        (
            Deployment(remediation_mode="off", scan_enabled=False, sync=True, secrets_kms=True, ecs_services=True),
            {"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "ecs:UpdateService", "kms:Decrypt"}
            | {"kms:GenerateDataKey"},
        ),
        (
            Deployment(remediation_mode="off", scan_roles=True, automation_documents=True),
            {"sts:AssumeRole"} | {"dynamodb:UpdateItem"},
        ),
        (
            Deployment(remediation_mode="off", scan_enabled=False, securityhub=True),
            {"securityhub:BatchImportFindings", "securityhub:GetFindings"},
        ),
    ],
    ids=["defaults", "dry-run", "sync-only", "sync-with-keys-and-services", "scan-roles", "securityhub"],
)
def test_each_deployment_needs_what_its_features_call(deployment: Deployment, expected: set[str]) -> None:
    """Values are read only with sync; secret writes and Lambda only in apply mode; the lists widen only when set."""
    assert expected_actions(deployment, CALLS) == expected
