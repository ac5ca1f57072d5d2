"""The IAM actions the daemon's task role needs, by feature, and which of them a given configuration needs.

The table is the daemon's code as tests/support/iam.py derives it (every `aws.call` reachable from `daemon.app`,
mapped to IAM actions the way AWS documents them); tests/unit/test_doctor_actions.py fails when the two differ, so
a new AWS call in the daemon changes this table in the same commit. `needed` mirrors that module's `Deployment`.
"""

from __future__ import annotations

from daemon.config import Config

DAEMON_ACTIONS: dict[str, frozenset[str]] = {
    "core": frozenset(
        {
            "cloudtrail:DescribeTrails",
            "cloudtrail:GetTrailStatus",
            "dynamodb:DescribeTable",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
        }
    ),
    "dlq": frozenset({"sqs:ReceiveMessage"}),
    "failures": frozenset(
        {"dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
    ),
    "findings": frozenset({"securityhub:BatchImportFindings", "securityhub:GetFindings"}),
    "remediation": frozenset(
        {
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "lambda:InvokeFunction",
            "secretsmanager:DescribeSecret",
            "secretsmanager:RotateSecret",
            "secretsmanager:UpdateSecretVersionStage",
            "sns:Publish",
            "ssm:StartAutomationExecution",
        }
    ),
    "scan": frozenset(
        {
            "dynamodb:BatchWriteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "secretsmanager:ListSecretVersionIds",
            "secretsmanager:ListSecrets",
            "sts:AssumeRole",
        }
    ),
    "sync": frozenset(
        {
            "dynamodb:PutItem",
            "ecs:UpdateService",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
            "sns:Publish",
        }
    ),
}

# Remediation's writes, needed only in `apply` mode.
_APPLY_ONLY = frozenset(
    {"secretsmanager:UpdateSecretVersionStage", "secretsmanager:RotateSecret", "lambda:InvokeFunction"}
)
# Needed only when a secret names a restart automation document, which doctor cannot know: checked, not required.
OPTIONAL = frozenset({"ssm:StartAutomationExecution"})


def features_on(config: Config) -> set[str]:
    """The features the daemon starts with this configuration (daemon/features.py)."""
    on = {"core", "dlq", "failures"}  # the DLQ monitor runs whenever the queue has a DLQ, which doctor requires
    on |= {"scan"} if config.scan_enabled else set()
    on |= {"sync"} if config.sync_pairs else set()
    on |= {"remediation"} if config.remediation_mode != "off" else set()
    on |= {"findings"} if config.securityhub else set()
    return on


def needed(config: Config) -> dict[str, str]:
    """IAM action -> the feature that needs it, for this configuration (OPTIONAL ones included)."""
    actions: dict[str, str] = {}
    for feature in sorted(features_on(config)):
        for action in sorted(DAEMON_ACTIONS[feature]):
            if feature == "remediation" and action in _APPLY_ONLY | OPTIONAL and config.remediation_mode != "apply":
                continue
            if action == "sts:AssumeRole" and not any(target.role_arn for target in config.scan_targets):
                continue
            if action == "ecs:UpdateService" and not any(pair.ecs_services for pair in config.sync_pairs):
                continue
            actions.setdefault(action, feature)
    return actions
