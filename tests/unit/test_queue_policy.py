"""The event queue's policy admits the rules and the named senders, and no forger (evaluated by a stand-in)."""

from __future__ import annotations

import pytest

from daemon.provision import principal_of, queue_policy
from tests.support.sqs_policy import SendRequest, allowed

ACCOUNT = "123456789012"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:rotaudit-events"
RULES = [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/rotaudit-rotation-events"]
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotaudit-task"
POLICY = queue_policy(QUEUE, RULES, senders=[TASK_ROLE])


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (SendRequest(service="events.amazonaws.com", source_arn=RULES[0]), True),
        (SendRequest(service="events.amazonaws.com", source_arn=RULES[0].replace("rotation", "other")), False),
        (SendRequest(principal_arn=TASK_ROLE, identity_allows=True), True),
        # A principal of the same account whose own IAM policy allows sqs:SendMessage on every queue: the forger.
        (SendRequest(principal_arn=f"arn:aws:iam::{ACCOUNT}:user/mallory", identity_allows=True), False),
        (SendRequest(principal_arn=f"arn:aws:iam::{ACCOUNT}:role/ci-deployer", identity_allows=True), False),
        # A forger who names one of the rules as source still is not EventBridge.
        (SendRequest(principal_arn=f"arn:aws:iam::{ACCOUNT}:user/mallory", source_arn=RULES[0]), False),
    ],
)
def test_only_the_rules_and_the_named_senders_may_send(request_: SendRequest, expected: bool) -> None:
    """EventBridge for our rules and the task role pass; any other principal of the account is denied."""
    assert allowed(POLICY, request_, QUEUE) is expected


def test_without_named_senders_only_the_rules_may_send() -> None:
    """With no senders, even a principal whose IAM allows it cannot send."""
    policy = queue_policy(QUEUE, RULES)
    assert not allowed(policy, SendRequest(principal_arn=TASK_ROLE, identity_allows=True), QUEUE)
    assert allowed(policy, SendRequest(service="events.amazonaws.com", source_arn=RULES[0]), QUEUE)


@pytest.mark.parametrize(
    ("caller", "principal"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/rotaudit-task/ecs-task-1", TASK_ROLE),
        (f"arn:aws:iam::{ACCOUNT}:user/ops", f"arn:aws:iam::{ACCOUNT}:user/ops"),
        (f"arn:aws-us-gov:sts::{ACCOUNT}:assumed-role/r/s", f"arn:aws-us-gov:iam::{ACCOUNT}:role/r"),
    ],
)
def test_principal_of_a_session_is_its_role(caller: str, principal: str) -> None:
    """aws:PrincipalArn names an assumed role's role, not its session: provision allows that."""
    assert principal_of(caller) == principal
