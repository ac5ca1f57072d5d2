"""The chaos run, its fault proxy, and the lost-response cases the chaos run found.

The proxy runs as a subprocess in front of the session's emulator. The shape tests fault every call (rate 1.0);
the lost-response tests aim it at one call the emulator executes while the daemon is told it failed, and drive
the daemon's own parts (remediation replicas, the scanner) through it. The run tests run
`python -m tests.chaos --short` — its own emulator, proxy and three replicas, SIGKILLs, a stall, a rolling
restart — and `python -m tests.chaos --remediation --short` (rotations that really fail on the rotation stand-in),
and read the figures they write.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

from daemon.aws import Aws, translate
from daemon.config import Config as DaemonConfig
from daemon.devtools.emulator import Emulator
from daemon.emit import build_event
from daemon.errors import TransientAwsError
from daemon.remediation.state import held_label
from daemon.scan.metrics import ScanMetrics
from daemon.scan.scanner import Scanner
from tests.chaos.processes import Process, http_json, start_proxy
from tests.support import REGION, ROOT, boto, rotation
from tests.support.remediation import (
    FakeClock,
    Replica,
    config,
    drain,
    remediation_items,
    replicas,
    subscribe,
)
from tests.support.scan import create_scan_table, create_secret

pytestmark = pytest.mark.slow

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
# service, operation, parameters; the throttle AWS sends for it (code, HTTP status)
CALLS: list[tuple[str, str, dict[str, Any], str, int]] = [
    ("sqs", "list_queues", {}, "RequestThrottled", 400),
    ("dynamodb", "list_tables", {}, "ProvisionedThroughputExceededException", 400),
    ("sns", "list_topics", {}, "Throttled", 429),
    ("sts", "get_caller_identity", {}, "Throttling", 400),
    ("secretsmanager", "list_secrets", {}, "ThrottlingException", 400),
    ("ssm", "describe_parameters", {}, "ThrottlingException", 400),
    ("events", "list_rules", {}, "ThrottlingException", 400),
]


@pytest.fixture
def proxy(emulator: Emulator, tmp_path: Path) -> Iterator[tuple[Process, str]]:
    process, url = start_proxy(emulator.endpoint_url, 1.0, 7, tmp_path)
    yield process, url
    process.stop()


def client(service: str, url: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url, config=NO_RETRIES)


def fault(url: str, kind: str) -> None:
    http_json(url + "/_chaos/config", {"rate": 1.0, "mix": {kind: 1.0}})


def error_of(service: str, operation: str, params: dict[str, Any], url: str) -> ClientError:
    with pytest.raises(ClientError) as raised:
        getattr(client(service, url), operation)(**params)
    return raised.value


@pytest.mark.parametrize(("service", "operation", "params", "code", "status"), CALLS, ids=[c[0] for c in CALLS])
def test_throttles_arrive_as_the_service_sends_them(
    proxy: tuple[Process, str], service: str, operation: str, params: dict[str, Any], code: str, status: int
) -> None:
    """An injected throttle reaches botocore in the service's own protocol, with AWS's code and HTTP status."""
    fault(proxy[1], "throttle")
    error = error_of(service, operation, params, proxy[1])
    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize(("service", "operation", "params", "code", "status"), CALLS, ids=[c[0] for c in CALLS])
def test_the_daemon_retries_every_injected_fault(
    proxy: tuple[Process, str], service: str, operation: str, params: dict[str, Any], code: str, status: int
) -> None:
    """Each throttle and 5xx the proxy injects is one the daemon classifies as transient (and so retries)."""
    del code, status
    for kind in ("throttle", "error_before"):
        fault(proxy[1], kind)
        error = error_of(service, operation, params, proxy[1])
        assert isinstance(translate(service, operation, error), TransientAwsError), error.response["Error"]


def test_error_after_executes_the_call(proxy: tuple[Process, str], emulator: Emulator) -> None:
    """An `error_after` fault answers 5xx although the emulator executed the call: the response is lost."""
    fault(proxy[1], "error_after")
    name = f"chaos-after-{uuid.uuid4().hex[:8]}"
    error = error_of("sqs", "create_queue", {"QueueName": name}, proxy[1])
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    assert client("sqs", emulator.endpoint_url).get_queue_url(QueueName=name)["QueueUrl"].endswith(name)
    stats = http_json(proxy[1] + "/_chaos/stats")
    assert stats["by_operation"] == {"error_after sqs.CreateQueue": 1}


def test_helper_endpoints_bypass_faults(proxy: tuple[Process, str]) -> None:
    """The emulator's own helpers (/_rotaudit/..., /moto-api/...) pass through even when every AWS call faults."""
    fault(proxy[1], "error_before")
    with urllib.request.urlopen(proxy[1] + "/_rotaudit/stats", timeout=10) as response:  # noqa: S310  # our URL
        assert response.status == 200
        assert isinstance(json.loads(response.read()), dict)
    with urllib.request.urlopen(proxy[1] + "/moto-api/data.json", timeout=10) as response:  # noqa: S310
        assert response.status == 200
    assert http_json(proxy[1] + "/_chaos/stats")["injected"] == {}


def test_short_chaos_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """`python -m tests.chaos --short`: no event lost or doubled, one remediation and notification per failure."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.chaos", "--short", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert out.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["failures"] == [], done.stdout[-3000:]
    assert done.returncode == 0
    figures = report["figures"]
    assert figures["messages_sent"] == 1000
    assert figures["event_items"] == figures["distinct_events"] > 600
    assert figures["lost_events"] == figures["duplicate_items"] == figures["unexpected_items"] == 0
    assert figures["failed_rotations"] == figures["remediation_items"] == figures["notified_rotations"] > 0
    assert figures["lost_notifications"] == 0
    assert figures["kills"] == 2
    assert figures["stall_s"] == 5.0
    assert figures["rolling_restarts"] == 1
    assert figures["sigterm_exit_codes"] == {"0": 6}  # three rolling, three final
    assert set(figures["faults_injected"]) == {"throttle", "error_before", "error_after"}
    assert figures["scan_runs"] >= 1
    assert figures["dlq_messages"] == 0


def test_short_remediation_chaos_run_keeps_the_rules(tmp_path: Path) -> None:
    """`python -m tests.chaos --remediation --short`: rotations that really fail at every step, remediated under
    SIGKILLs, faults and duplicate deliveries, end with every invariant held."""
    out = tmp_path / "remediation-results.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.chaos", "--remediation", "--short", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert out.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["failures"] == [], done.stdout[-3000:]
    assert done.returncode == 0
    figures = report["figures"]
    assert figures["invariants"] == dict.fromkeys(figures["invariants"], True)
    assert len(figures["invariants"]) == 6
    assert figures["secrets"] == figures["rotations_started"] == 28
    assert figures["recovered_by_secrets_managers_retries"] > 0
    assert figures["not_recovered_by_secrets_managers_retries"] > 0
    assert figures["rotations_by_rotaudit"] > 0
    assert figures["d_failed_rotations"] == figures["remediation_items"] >= 28
    assert figures["deliveries_processed"]["duplicate"] > 0
    assert figures["kills"] == 3
    assert figures["sigterm_exit_codes"] == {"0": 3}
    assert figures["dlq_messages"] == 0


# --- one lost response at a time ----------------------------------------------------------------------------
# Each test aims the proxy at one call: the emulator executes it, the daemon sees a 5xx and retries (`error_after`).
# On AWS this is a response lost to a timeout or a reset connection after the write committed.


@pytest.fixture(scope="module")
def aimed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_proxy(emulator.endpoint_url, 0.0, 11, tmp_path_factory.mktemp("aimed-proxy"))
    yield url
    process.stop()


def aim(url: str, operation: str, kind: str, match: str = "", budget: int | None = 1) -> None:
    """Fault `operation` calls whose body holds `match` with `kind`, `budget` times (None: every time)."""
    config = {"rate": 1.0, "mix": {kind: 1.0}, "only": [operation], "match": match, "budget": budget}
    http_json(url + "/_chaos/config", {"reset": True, **config})


def lose_one_response(url: str, operation: str, match: str = "") -> None:
    """The next `operation` whose body holds `match` is executed, and its caller told it failed."""
    aim(url, operation, "error_after", match)


SETTLE_S = 1  # ROTAUDIT_REMEDIATION_SETTLE_S in these tests: the remediators' clock is moved past it


def rotation_disabled_secret(endpoint: str) -> str:
    """A secret whose failed rotation escalates once settled (rotation off): one remediation item, one notification."""
    name = f"chaos/{uuid.uuid4().hex[:8]}"
    return str(boto("secretsmanager", endpoint).create_secret(Name=name, SecretString="x")["ARN"])


def failed_set_secret(endpoint: str, queue_url: str) -> tuple[str, str, dict[str, Any]]:
    """A secret whose rotation really failed in setSecret on the stand-in (no retry by Secrets Manager): its ARN,
    the pending version and the RotationFailed event the stand-in published."""
    sm, name = boto("secretsmanager", endpoint), f"chaos/{uuid.uuid4().hex[:8]}"
    arn = str(sm.create_secret(Name=name, SecretString=json.dumps({"username": "app", "password": "p0"}))["ARN"])
    rotation.configure(endpoint, arn, failures=[rotation.Failure("setSecret", times=None)], retries=0)
    token = str(sm.rotate_secret(SecretId=arn)["VersionId"])
    assert rotation.wait_for_outcome(endpoint, arn, token).status == "failed"
    started, failure = rotation.received_events(endpoint, queue_url, arn, wanted=2)
    assert failure["detail"]["eventName"] == "RotationFailed", (started, failure)
    return arn, token, failure


def lost(url: str) -> dict[str, int]:
    injected: dict[str, int] = http_json(url + "/_chaos/stats")["by_operation"]
    return injected


async def settle_and_decide(replica: Replica, clock: FakeClock, envelope: dict[str, Any]) -> None:
    """Deliver a RotationFailed, let it settle (the clock moves past the settle time), then run the job once."""
    await replica.feed(envelope)
    clock.advance(SETTLE_S + 5)
    await replica.job.run_once()


def settled_config(url: str, stack: dict[str, str]) -> DaemonConfig:
    return config(url, stack, ROTAUDIT_REMEDIATION_SETTLE_S=str(SETTLE_S))


async def test_a_lost_notification_marker_response_loses_no_notification(
    aimed: str, endpoint: str, stack: dict[str, str]
) -> None:
    """The notification marker's conditional put commits but its response is lost: the notification still goes."""
    arn = rotation_disabled_secret(endpoint)
    notes = subscribe(endpoint, stack["topic_arn"])
    lose_one_response(aimed, "dynamodb.PutItem", "notify#")
    clock = FakeClock()
    async with replicas(1, settled_config(aimed, stack), clock) as (replica,):
        await settle_and_decide(replica, clock, build_event("RotationFailed", arn, step="setSecret"))
    assert lost(aimed) == {"error_after dynamodb.PutItem": 1}
    assert [note["attributes"]["event"] for note in drain(endpoint, notes)] == ["needs_human"]


async def test_a_lost_settling_claim_response_still_decides_once_settled(
    aimed: str, endpoint: str, stack: dict[str, str]
) -> None:
    """The settling claim's transaction commits but its response is lost: the failure is decided once settled."""
    arn = rotation_disabled_secret(endpoint)
    lose_one_response(aimed, "dynamodb.TransactWriteItems", "claim#")
    clock = FakeClock()
    async with replicas(1, settled_config(aimed, stack), clock) as (replica,):
        await settle_and_decide(replica, clock, build_event("RotationFailed", arn, step="setSecret"))
    assert lost(aimed) == {"error_after dynamodb.TransactWriteItems": 1}
    assert [item["status"] for item in remediation_items(endpoint, stack["table_name"], arn)] == ["needs_human"]


async def test_a_lost_take_over_response_does_not_defer_the_remediation(
    aimed: str, endpoint: str, stack: dict[str, str]
) -> None:
    """The settled claim's take-over commits but its response is lost: the same job run decides, not a lease later."""
    arn = rotation_disabled_secret(endpoint)
    clock = FakeClock()
    async with replicas(1, settled_config(aimed, stack), clock) as (replica,):
        await replica.feed(build_event("RotationFailed", arn, step="setSecret"))
        clock.advance(SETTLE_S + 5)
        lose_one_response(aimed, "dynamodb.TransactWriteItems", "claim#")  # the job's take-over is the next one
        await replica.job.run_once()
    assert lost(aimed) == {"error_after dynamodb.TransactWriteItems": 1}
    assert [item["status"] for item in remediation_items(endpoint, stack["table_name"], arn)] == ["needs_human"]


@pytest.mark.parametrize(
    ("match", "label"), [("rotaudit-held-", "the held label"), ("AWSPENDING", "AWSPENDING")], ids=["hold", "remove"]
)
async def test_a_lost_label_move_response_is_not_a_failed_action(
    aimed: str, endpoint: str, stack: dict[str, str], match: str, label: str
) -> None:
    """Setting the pending version aside (held label, then AWSPENDING removed) after a setSecret that really failed:
    one move succeeds but its response is lost; the retry finds it done, and the plan carries on."""
    del label
    arn, pending, event = failed_set_secret(endpoint, stack["queue_url"])
    lose_one_response(aimed, "secretsmanager.UpdateSecretVersionStage", match)
    clock = FakeClock()
    async with replicas(1, settled_config(aimed, stack), clock) as (replica,):
        await settle_and_decide(replica, clock, event)
    assert lost(aimed) == {"error_after secretsmanager.UpdateSecretVersionStage": 1}
    (item,) = remediation_items(endpoint, stack["table_name"], arn)
    assert [(r["action"], r["result"]) for r in item["results"]] == [("hold", "applied"), ("remove_pending", "applied")]
    assert item["status"] == "retry_due"
    after = rotation.state(endpoint, arn)
    assert after.holder("AWSPENDING") is None
    assert after.labels[pending] == [held_label(pending)]
    assert (after.unlabelled_held, after.refusals) == ([], 0)


@pytest.mark.parametrize(
    ("operation", "match"),
    [("dynamodb.PutItem", "lease#scan"), ("dynamodb.TransactWriteItems", "lease#scan")],
    ids=["taking the lease", "completing the run"],
)
async def test_a_lost_scan_lease_response_still_runs_the_window_once(
    aimed: str, endpoint: str, operation: str, match: str
) -> None:
    """Taking or completing a window's lease commits but the response is lost: the run happens, and succeeds."""
    table = create_scan_table(endpoint)
    key = f"Chaos{uuid.uuid4().hex[:8]}"
    create_secret(boto("secretsmanager", endpoint), f"chaos-scan-{uuid.uuid4().hex[:8]}", {key: "yes"})
    window = datetime.now(UTC).replace(second=0, microsecond=0)
    lose_one_response(aimed, operation, match)
    async with Aws(REGION, endpoint_url=aimed) as aws:
        scanner = Scanner(
            aws, table, ScanMetrics(CollectorRegistry()), tag=f"{key}=yes", lease_s=60, replica_id="replica-a"
        )
        async with asyncio.timeout(20):  # well under the lease: no waiting out its own lease
            result = await scanner.run_window(window)
    assert lost(aimed) == {f"error_after {operation}": 1}
    assert result is not None
    assert result.checked == 1


async def test_a_failed_scan_run_hands_its_window_over(aimed: str, endpoint: str) -> None:
    """A run that fails releases its window's lease, so another replica runs the window without waiting it out."""
    table = create_scan_table(endpoint)
    key = f"Chaos{uuid.uuid4().hex[:8]}"
    create_secret(boto("secretsmanager", endpoint), f"chaos-scan-{uuid.uuid4().hex[:8]}", {key: "yes"})
    window = datetime.now(UTC).replace(second=0, microsecond=0)
    aim(aimed, "dynamodb.BatchWriteItem", "error_before", budget=None)
    async with Aws(REGION, endpoint_url=aimed, max_retry_s=2.0) as aws:
        failing = Scanner(
            aws, table, ScanMetrics(CollectorRegistry()), tag=f"{key}=yes", lease_s=300, replica_id="replica-a"
        )
        assert await failing.run_window(window) is None
    http_json(aimed + "/_chaos/config", {"rate": 0.0})
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        taker = Scanner(
            aws, table, ScanMetrics(CollectorRegistry()), tag=f"{key}=yes", lease_s=300, replica_id="replica-b"
        )
        async with asyncio.timeout(20):  # well under the 300 s lease
            result = await taker.run_window(window)
    assert result is not None
