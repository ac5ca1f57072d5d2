"""`rotaudit doctor`'s pure parts: the daemon's IAM actions, the queue-policy verdict, the exit code and JSON shape."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from daemon.config import load_config
from daemon.doctor.actions import DAEMON_ACTIONS, needed
from daemon.doctor.policy import Verdict, delivery_verdict
from daemon.doctor.result import Check, Status, as_json, exit_code
from daemon.probe import PROBE_SOURCE, parse_probe, probe_entry
from daemon.provision import queue_policy
from tests.support import ROOT
from tests.support.iam import Deployment, calls_in_source, daemon_calls, expected_actions, modules

QUEUE = "arn:aws:sqs:us-east-1:123456789012:rotaudit-events"
RULE = "arn:aws:events:us-east-1:123456789012:rule/rotaudit-rotation-events"
OTHER_RULE = "arn:aws:events:us-east-1:123456789012:rule/someone-else"
ROLE = "arn:aws:iam::123456789012:role/rotaudit-task"


def test_the_action_table_is_what_the_daemons_code_calls() -> None:
    """DAEMON_ACTIONS equals, feature by feature, the actions derived from the daemon's AWS calls."""
    derived: dict[str, set[str]] = {}
    for call in daemon_calls():
        derived.setdefault(call.feature, set()).update(call.actions)
    assert {feature: set(actions) for feature, actions in DAEMON_ACTIONS.items()} == derived


CONFIGS: list[tuple[dict[str, str], Deployment]] = [
    ({}, Deployment()),
    ({"ROTAUDIT_REMEDIATION_MODE": "dry-run"}, Deployment(remediation_mode="dry-run")),
    ({"ROTAUDIT_REMEDIATION_MODE": "off", "ROTAUDIT_SCAN_ENABLED": "false"}, Deployment("off", scan_enabled=False)),
    (
        {"ROTAUDIT_SCAN_TARGETS": json.dumps([{"role_arn": "arn:aws:iam::210987654321:role/scan"}])},
        Deployment(scan_roles=True),
    ),
    (
        {
            "ROTAUDIT_SYNC_PAIRS": json.dumps(
                [{"name": "o", "source": "rds!db-1", "target": "o/url", "ecs_services": ["prod/orders"]}]
            )
        },
        Deployment(sync=True, ecs_services=True),
    ),
    ({"ROTAUDIT_SECURITYHUB": "true"}, Deployment(securityhub=True)),
]


@pytest.mark.parametrize(("settings", "deployment"), CONFIGS)
def test_needed_actions_are_the_task_roles_for_the_configuration(
    settings: dict[str, str], deployment: Deployment
) -> None:
    """What doctor asks of the role is what test_iam holds the Terraform role to (automation: optional, apply only)."""
    config = load_config({"AWS_REGION": "us-east-1", **settings}, required=())
    automation = {"ssm:StartAutomationExecution"} if deployment.remediation_mode == "apply" else set()
    assert set(needed(config)) == expected_actions(deployment) | automation


def _policy(**overrides: Any) -> str:
    return json.dumps(queue_policy(QUEUE, [RULE], senders=[ROLE]) | overrides)


POLICIES: list[tuple[str, str | None, str, Verdict]] = [
    ("provisioned", _policy(), RULE, Verdict.ALLOWED),
    ("another rule", _policy(), OTHER_RULE, Verdict.DENIED),
    ("no policy", None, RULE, Verdict.NOT_ALLOWED),
    ("allow only", json.dumps({"Statement": [queue_policy(QUEUE, [RULE])["Statement"][0]]}), RULE, Verdict.ALLOWED),
    (
        "allow for another queue",
        json.dumps({"Statement": [queue_policy(QUEUE + "-x", [RULE])["Statement"][0]]}),
        RULE,
        Verdict.NOT_ALLOWED,
    ),
    (
        "wildcard rule",
        json.dumps({"Statement": [queue_policy(QUEUE, ["arn:aws:events:*:123456789012:rule/*"])["Statement"][0]]}),
        RULE,
        Verdict.ALLOWED,
    ),
    (
        "deny everyone",
        json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "*"}]}),
        RULE,
        Verdict.DENIED,
    ),
    (
        "operator doctor does not know",
        json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": QUEUE,
                        "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
                    }
                ]
            }
        ),
        RULE,
        Verdict.UNKNOWN,
    ),
]


@pytest.mark.parametrize(("policy", "rule", "verdict"), [p[1:] for p in POLICIES], ids=[p[0] for p in POLICIES])
def test_delivery_verdict(policy: str | None, rule: str, verdict: Verdict) -> None:
    """Whether EventBridge may deliver the rule's events under the queue policy, as IAM would decide."""
    assert delivery_verdict(policy, QUEUE, rule) is verdict


def test_any_failure_exits_one_and_warnings_do_not() -> None:
    """Exit 0 with passes, warnings and skips; 1 as soon as one check fails."""
    fine = [Check("a", Status.PASS), Check("b", Status.WARN, "x"), Check("c", Status.SKIP)]
    assert (exit_code(fine), exit_code([*fine, Check("d", Status.FAIL, "x", "do y")])) == (0, 1)


def test_the_json_shape() -> None:
    """{ok, summary (a count per status), checks [{name, status, detail, fix}]}."""
    report = as_json([Check("queue.exists", Status.FAIL, "gone", "terraform apply"), Check("config", Status.PASS)])
    assert report == {
        "ok": False,
        "summary": {"pass": 1, "fail": 1, "warn": 0, "skip": 0},
        "checks": [
            {"name": "queue.exists", "status": "fail", "detail": "gone", "fix": "terraform apply"},
            {"name": "config", "status": "pass", "detail": "", "fix": ""},
        ],
    }


def test_the_readme_lists_the_iam_doctor_itself_needs() -> None:
    """The README's list of doctor's own IAM actions is what doctor's code (and the trail check it reuses) calls."""
    derived: set[str] = set()
    for name, path in modules().items():
        if name.startswith("daemon.doctor.") or name == "daemon.trail":
            derived |= {action for call in calls_in_source(name, path.read_text()) for action in call.actions}
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("Doctor's own calls need:") : readme.index("A call it is refused")]
    listed = set(re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", paragraph)) - {"sts:GetCallerIdentity"}
    assert listed == derived


def _delivered(entry: dict[str, Any]) -> str:
    """A PutEvents entry as EventBridge delivers it to SQS: the event JSON as the body."""
    return json.dumps(
        {"version": "0", "id": "e1", "source": entry["Source"], "detail-type": entry["DetailType"]}
        | {"detail": json.loads(entry["Detail"]), "time": "2026-01-01T00:00:00Z", "region": "us-east-1"}
    )


PROBE_ID = "0123456789abcdef0123456789abcdef"
PROBE = probe_entry(PROBE_ID, datetime(2026, 1, 1, tzinfo=UTC))
BODIES: list[tuple[str, str, str | None]] = [
    ("the probe", _delivered(PROBE), PROBE_ID),
    ("another source", _delivered(PROBE | {"Source": "aws.secretsmanager"}), None),
    ("another detail-type", _delivered(PROBE | {"DetailType": "Secret Label Updated"}), None),
    ("an id not ours", _delivered(PROBE | {"Detail": json.dumps({"probe_id": "../secret#x"})}), None),
    ("no detail", json.dumps({"source": PROBE_SOURCE, "detail-type": "rotaudit doctor probe"}), None),
    ("not JSON", f"{PROBE_SOURCE} {{", None),
]


@pytest.mark.parametrize(("body", "probe_id"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
def test_parse_probe(body: str, probe_id: str | None) -> None:
    """Only doctor's probe as EventBridge delivers it is a probe; anything else goes on to the rotation parser."""
    assert parse_probe(body) == probe_id
