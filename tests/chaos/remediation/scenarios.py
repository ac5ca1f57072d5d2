"""The remediation profile's secrets: one rotation each that really fails on the stand-in, in every way the table
distinguishes.

A scenario is a failing step and where in it the failure strikes (`createSecret`, `setSecret` before and after its
change, `testSecret`, `finishSecret` before and after its label move), a strategy (`rotaudit:strategy`), whether the
secret allows AWSCURRENT moves (`rotaudit:move-current=allowed`), and whether Secrets Manager's own retries fix it:
`recovers` fails once or twice and a retry succeeds; `persists` fails every attempt of the first rotation (finishSecret
after its move: with no retry, since a retry finds the work done and succeeds). Later rotations — rotaudit's — meet
no injected fault: they fail only where the template itself cannot go on (single user, after setSecret changed the
password: neither AWSCURRENT nor AWSPREVIOUS logs in any more).
"""

from __future__ import annotations

import itertools
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from tests.support import rotation

STEPS = (
    ("createSecret", False),
    ("createSecret", True),
    ("setSecret", False),
    ("setSecret", True),
    ("testSecret", False),
    ("finishSecret", False),
    ("finishSecret", True),
)
STRATEGIES = ("single-user", "alternating-users")
SECRETS_MANAGER_RETRIES = 2  # the stand-in's default: the real count is not documented
DUPLICATED = "dup-"  # secrets whose name starts so get every event delivered twice (a second rule)


@dataclass(frozen=True, slots=True)
class Scenario:
    step: str
    after: bool  # the fault strikes after the step's change
    strategy: str
    move_current: bool
    recovers: bool  # Secrets Manager's own retry succeeds
    fails: int = 1  # failing attempts when it recovers (1 or 2)

    @property
    def name(self) -> str:
        where = "after" if self.after else "before"
        move = "move" if self.move_current else "stay"
        outcome = f"recovers{self.fails}" if self.recovers else "persists"
        return f"{self.step}-{where}.{self.strategy}.{move}.{outcome}"

    @property
    def retries(self) -> int:
        """Secrets Manager's retries of a failed attempt, as the stand-in runs them."""
        return 0 if self.step == "finishSecret" and self.after and not self.recovers else SECRETS_MANAGER_RETRIES

    @property
    def failures(self) -> list[rotation.Failure]:
        times = self.fails if self.recovers else self.retries + 1
        return [rotation.Failure(self.step, times=times, after=self.after)]

    @property
    def tags(self) -> dict[str, str]:
        tags = {"rotaudit:strategy": self.strategy, "ChaosScenario": self.name}
        if self.move_current:
            tags["rotaudit:move-current"] = "allowed"
        return tags


def scenarios(copies: int) -> list[Scenario]:
    """Every step x strategy x move-current, each in a `recovers` and a `persists` variant, `copies` times.

    With `copies` 0 (the short run): each combination once, half of them recovering (each step gets both)."""
    found = []
    for (step, after), (s, strategy), (m, move) in itertools.product(
        STEPS, enumerate(STRATEGIES), enumerate((False, True))
    ):
        if copies == 0:
            recovers = (s + m) % 2 == 0
            found.append(Scenario(step, after, strategy, move, recovers, fails=1 + s))
            continue
        for copy in range(copies):
            found.append(Scenario(step, after, strategy, move, recovers=True, fails=1 + (copy + s) % 2))
            found.append(Scenario(step, after, strategy, move, recovers=False))
    return found


@dataclass(frozen=True, slots=True)
class ChaosSecret:
    arn: str
    name: str
    scenario: Scenario
    duplicated: bool


def create(sm: Any, endpoint: str, prefix: str, all_scenarios: list[Scenario]) -> list[ChaosSecret]:
    """One secret per scenario, its stand-in function configured (which seeds the fake database); every other
    secret's name starts with DUPLICATED. Nothing here publishes an event (CreateSecret moves no label)."""
    made = []
    for index, scenario in enumerate(all_scenarios):
        duplicated = index % 2 == 0
        name = f"{prefix}/{DUPLICATED if duplicated else ''}{index:03d}-{uuid.uuid4().hex[:4]}"
        value = {"engine": "postgres", "host": "db.internal", "username": f"app{index}"}
        value["password"] = secrets.token_hex(16)
        tags = [{"Key": key, "Value": tag} for key, tag in scenario.tags.items()]
        arn = str(sm.create_secret(Name=name, SecretString=json.dumps(value), Tags=tags)["ARN"])
        rotation.configure(
            endpoint, arn, strategy=scenario.strategy, failures=scenario.failures, retries=scenario.retries
        )
        made.append(ChaosSecret(arn, name, scenario, duplicated))
    return made


def duplicate_rules(events: Any, sqs_arn: str, prefix: str, arn_prefix: str) -> list[str]:
    """Second rules delivering every rotation and label event of the DUPLICATED secrets to the queue again, as
    EventBridge's at-least-once delivery may. Returns the rule names."""
    secret_prefix = f"{arn_prefix}{prefix}/{DUPLICATED}"
    patterns = {
        "service": {
            "source": ["aws.secretsmanager"],
            "detail": {"additionalEventData": {"SecretId": [{"prefix": secret_prefix}]}},
        },
        "label": {
            "source": ["aws.secretsmanager"],
            "detail-type": ["Secret Label Updated"],
            "resources": [{"prefix": secret_prefix}],
        },
    }
    names = []
    for kind, pattern in patterns.items():
        rule = f"chaos-dup-{kind}-{uuid.uuid4().hex[:6]}"
        events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": sqs_arn}])
        names.append(rule)
    return names
