"""Derived secrets against the emulator: forced ECS deployments, and `rotaudit sync --once` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator

import pytest

from daemon.aws import Aws
from daemon.config_values import SyncPair
from daemon.sync.syncer import SyncOutcome
from tests.support import REGION, ROOT, boto, daemon_env, rotaudit_cmd
from tests.support.sync import (
    alert_queue,
    alerts,
    eventually,
    new_syncer,
    rds_pair,
    versions,
)


@pytest.fixture
async def aws(endpoint: str) -> AsyncIterator[Aws]:
    async with Aws(REGION, endpoint_url=endpoint, max_attempts=2) as client:
        yield client


# --- ECS -------------------------------------------------------------------------------------------------
def _ecs_service(endpoint: str) -> tuple[str, str]:
    """A cluster and a service running one task definition; returns (cluster, service)."""
    ecs = boto("ecs", endpoint)
    cluster, service = f"c-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}"
    ecs.create_cluster(clusterName=cluster)
    family = f"app-{uuid.uuid4().hex[:6]}"
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "app", "image": "app", "memory": 128}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=1)
    return cluster, service


def _deployment_id(endpoint: str, cluster: str, service: str) -> str:
    described = boto("ecs", endpoint).describe_services(cluster=cluster, services=[service])
    return str(described["services"][0]["deployments"][0]["id"])


async def test_an_update_forces_a_new_ecs_deployment(endpoint: str, aws: Aws, stack: dict[str, str]) -> None:
    """After an update, each configured service gets a new deployment; an unchanged sync deploys nothing."""
    base, _, _ = rds_pair(endpoint)
    cluster, service = _ecs_service(endpoint)
    before = _deployment_id(endpoint, cluster, service)
    pair = SyncPair(name=base.name, source=base.source, target=base.target, ecs_services=(f"{cluster}/{service}",))
    syncer = new_syncer(aws, stack, pair)
    result = (await syncer.run_once())[0]
    assert result.redeployed == (f"{cluster}/{service}",)
    after = _deployment_id(endpoint, cluster, service)
    assert after != before
    assert (await syncer.run_once())[0].redeployed == ()
    assert _deployment_id(endpoint, cluster, service) == after


async def test_a_failed_ecs_deployment_is_reported_and_alerted(endpoint: str, stack: dict[str, str], aws: Aws) -> None:
    """A service that does not exist is listed as failed, the target stays updated, and SNS says so."""
    base, _, _ = rds_pair(endpoint)
    cluster, _ = _ecs_service(endpoint)
    alert_url = alert_queue(endpoint, stack["topic_arn"])
    pair = SyncPair(name=base.name, source=base.source, target=base.target, ecs_services=(f"{cluster}/missing",))
    result = (await new_syncer(aws, stack, pair).run_once())[0]
    assert (result.outcome, result.redeploy_failed) == (SyncOutcome.UPDATED, (f"{cluster}/missing",))
    sent = await eventually(lambda: alerts(endpoint, alert_url))
    assert sent[0]["redeploy_failed"] == [f"{cluster}/missing"]


# --- the CLI ---------------------------------------------------------------------------------------------
def test_the_cli_syncs_one_pair_and_exits_by_outcome(endpoint: str, stack: dict[str, str]) -> None:
    """`rotaudit sync --pair` prints one result, exits 0; a failing pair exits 1; bad config 78 (`--once` kept)."""
    good, _, target = rds_pair(endpoint)
    pairs = [
        {"name": good.name, "source": good.source, "target": good.target},
        {"name": "broken", "source": "no-such-source-secret", "target": f"{good.target}-other"},  # its own target
    ]
    env = daemon_env(endpoint, stack, ROTAUDIT_SYNC_PAIRS=json.dumps(pairs))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            rotaudit_cmd("sync", *args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    done = run("--pair", good.name, "--output", "json")
    assert done.returncode == 0, done.stderr
    lines = json.loads(done.stdout)["results"]
    assert [(line["pair"], line["outcome"], line["trigger"]) for line in lines] == [(good.name, "updated", "manual")]
    assert versions(endpoint, target) == 2
    failed = run("--once")
    assert failed.returncode == 1
    outcomes = {row.split()[0]: row.split()[1] for row in failed.stdout.splitlines()[1:]}  # the text table
    assert outcomes == {good.name: "unchanged", "broken": "error"}
    assert run("--once", "--pair", "nope").returncode == 78
    env["ROTAUDIT_SYNC_PAIRS"] = json.dumps([{**pairs[0], "template": "{nope}"}])
    bad_template = run("--once")
    assert bad_template.returncode == 78
    assert "unknown template field {nope}" in bad_template.stderr
