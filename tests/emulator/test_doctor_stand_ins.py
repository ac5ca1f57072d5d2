"""The emulator's stand-ins that `rotaudit doctor` relies on: SimulatePrincipalPolicy, AssumeRole trust,
TestEventPattern (daemon/devtools/patches: iam, sts, events), each answering as AWS does for what they cover."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.scan import client

TRUST_ECS = {
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]
}
TRUST_ACCOUNT = {
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}
    ]
}


def _role(endpoint: str, trust: dict[str, object], *statements: dict[str, object]) -> str:
    iam, name = client("iam", endpoint), f"standin-{uuid.uuid4().hex[:8]}"
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    if statements:
        policy = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy)
    return arn


def test_simulation_allows_what_the_role_names_and_an_explicit_deny_wins(endpoint: str) -> None:
    """Allowed when an Allow names the action (wildcards too), explicitDeny when a Deny does, implicitDeny else."""
    role = _role(
        endpoint,
        TRUST_ECS,
        {"Effect": "Allow", "Action": ["sqs:*", "dynamodb:PutItem"], "Resource": "*"},
        {"Effect": "Deny", "Action": "sqs:DeleteMessage", "Resource": "*"},
    )
    actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "dynamodb:PutItem", "dynamodb:Query"]
    results = client("iam", endpoint).simulate_principal_policy(PolicySourceArn=role, ActionNames=actions)
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results["EvaluationResults"]}
    assert decisions == {
        "sqs:ReceiveMessage": "allowed",
        "sqs:DeleteMessage": "explicitDeny",
        "dynamodb:PutItem": "allowed",
        "dynamodb:Query": "implicitDeny",
    }


def test_assume_role_follows_an_existing_roles_trust(endpoint: str) -> None:
    """A role trusting only ECS tasks refuses the caller (403 AccessDenied); one trusting the account admits it."""
    sts = client("sts", endpoint)
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=_role(endpoint, TRUST_ECS), RoleSessionName="standin")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert sts.assume_role(RoleArn=_role(endpoint, TRUST_ACCOUNT), RoleSessionName="standin")["Credentials"]


def test_test_event_pattern_answers_with_the_routing_matcher(endpoint: str) -> None:
    """TestEventPattern says true for an event the pattern matches, false otherwise."""
    events = client("events", endpoint)
    pattern = json.dumps({"source": ["aws.secretsmanager"], "detail-type": ["Secret Label Updated"]})
    event = {"id": "1", "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1"}
    event |= {"source": "aws.secretsmanager", "resources": [], "detail": {}}
    label = events.test_event_pattern(
        EventPattern=pattern, Event=json.dumps(event | {"detail-type": "Secret Label Updated"})
    )
    other = events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event | {"detail-type": "Other"}))
    assert (label["Result"], other["Result"]) == (True, False)
