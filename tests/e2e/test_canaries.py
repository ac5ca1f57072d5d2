"""Secret canaries: secret values flow through every feature, and none of them reaches anything rotaudit emits.

One run (the module's `world` fixture) drives the real daemon (a subprocess, JSON logs to a file) and the real
CLI (subprocesses) over canary secrets: audit (events, one carrying a secret value in its payload), remediation
(rotations that really failed on the emulator's rotation stand-in: one set aside and retried, one escalated to
SNS), the age scan (`scan --once`, `report`), derived-secret sync (a
DATABASE_URL rebuilt from a rotated source; a render failure, an unparseable source and an AWS error on a secret
scheduled for deletion; a config error naming a pair with a password in it), and the DLQ (rejections carrying a
secret value, `dlq inspect`, `replay --dry-run`, `replay`, `export`). Then every log line, CLI output, metric,
audit item, SNS message and DLQ message attribute is searched for every encoded form of the canaries. The search
must find them where they belong (Secrets Manager's answers, the DLQ bodies, the export file), so zero hits
elsewhere is not vacuous.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import stat
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from daemon.aws import Aws
from daemon.devtools.emulator import Emulator
from daemon.emit import build_event
from daemon.provision import provision
from daemon.table import from_dynamo
from tests.support import REGION, boto, daemon_env, wait_until
from tests.support.canaries import (
    Canary,
    CliRun,
    cli_env,
    documents,
    put_secret,
    run_cli,
    run_cli_here,
    search,
    sns_tap,
)
from tests.support.daemon_process import DaemonProcess, queue_depth, receive_all, scan_table, send

ACCOUNT = "123456789012"
# Sent by the emulator before the daemon reads anything: each failed rotation's RotationStarted and RotationFailed
# (the app's and the human's), and the source's new AWSCURRENT (Secret Label Updated).
STAND_IN_EVENTS = 5
CLI_LABELS = (
    "scan",
    "history",
    "sync",
    "sync-bad-config",
    "inspect",
    "report",
    "inspect-json",
    "replay-dry-run",
    "replay",
    "export",
)


@dataclass
class World:
    """What one canary run captured."""

    sinks: dict[str, list[str]]  # must hold no canary: logs, CLI output, metrics, audit items, SNS, DLQ attributes
    controls: dict[str, list[str]]  # must hold canaries: where secret values belong
    needles: dict[str, str]
    items: list[dict[str, Any]]
    notes: list[dict[str, Any]]  # SNS messages, parsed
    dlq_reasons: list[str]
    cli: dict[str, CliRun]  # by label
    arns: dict[str, str]  # app, human
    rotated_form: str  # the needle form of the rotated password, percent-encoded (the DATABASE_URL holds it)


@dataclass
class Seeded:
    """The canary secrets and the daemon settings that point rotaudit at them."""

    name: str  # the prefix of every secret's name
    values: dict[str, str]  # label -> secret value (each holds the canary marker)
    arns: dict[str, str]
    settings: dict[str, str]
    answers: list[dict[str, Any]] = field(default_factory=list)  # GetSecretValue outputs: where values belong
    pending_password: str = ""  # the app secret's pending password, which the rotation stand-in chose


def _seed(endpoint: str, stack: dict[str, str], canary: Canary) -> Seeded:
    """Canary secrets for every feature: remediation, sync (one good pair, three failing ones) and the scan."""
    tag, sm = canary.token[:8], boto("secretsmanager", endpoint)
    name, scan = f"canary/{tag}", {"CanaryRun": tag}
    labels = ("app", "human", "source", "old", "rotated", "bad", "garbage")
    seeded = Seeded(name, {label: canary.value(label) for label in labels}, {}, {})
    values, arns = seeded.values, seeded.arns
    app = {"username": "app", "password": values["app"], "host": "db.internal", "port": 5432, "dbname": "app"}
    values["app-json"] = json.dumps(app)
    arns["app"] = put_secret(endpoint, f"{name}/app", values["app-json"], scan, rotating=True, failing="setSecret")
    seeded.answers.append(sm.get_secret_value(SecretId=arns["app"]))  # before remediation moves its labels
    # The stand-in's pending password: it must not leak either (it is a value, though not a canary).
    pending = sm.get_secret_value(SecretId=arns["app"], VersionStage="AWSPENDING")
    seeded.answers.append(pending)
    seeded.pending_password = json.loads(pending["SecretString"])["password"]
    human, notify_only = json.dumps({"password": values["human"]}), {**scan, "rotaudit:remediation": "notify-only"}
    arns["human"] = put_secret(endpoint, f"{name}/human", human, notify_only, rotating=True, failing="createSecret")
    source = f"rds!db-{tag}"
    arns["source"] = put_secret(endpoint, source, json.dumps({"username": "app", "password": values["source"]}), scan)
    values["old-url"] = f"postgres://app:{values['old']}@db.internal:5432/appdb?sslmode=require"
    put_secret(endpoint, f"{name}/DATABASE_URL", values["old-url"], scan)
    for bad_target in ("bad-target", "garbage-target", "error-target"):  # one target per pair (start-up insists)
        put_secret(endpoint, f"{name}/{bad_target}", f"not a url {values['bad']}", scan)
    put_secret(endpoint, f"{name}/bad-source", json.dumps({"username": "app", "password": values["bad"]}), scan)
    put_secret(endpoint, f"{name}/garbage-source", f"password={values['garbage']}", scan)
    deleted = put_secret(endpoint, f"{name}/deleted-source", json.dumps({"password": values["garbage"]}), scan)
    sm.delete_secret(SecretId=deleted, RecoveryWindowInDays=7)  # GetSecretValue on it: an AWS error
    database = {"host": "db.internal", "port": 5432, "dbname": "appdb"}
    pairs = [
        {"name": "db-url", "source": source, "target": f"{name}/DATABASE_URL", **database},
        {"name": "render-fails", "source": f"{name}/bad-source", "target": f"{name}/bad-target"},
        {"name": "source-garbage", "source": f"{name}/garbage-source", "target": f"{name}/garbage-target"},
        {"name": "aws-error", "source": f"{name}/deleted-source", "target": f"{name}/error-target"},
    ]
    seeded.settings = {
        "ROTAUDIT_SYNC_PAIRS": json.dumps(pairs),
        "ROTAUDIT_SNS_TOPIC_ARN": stack["topic_arn"],
        "ROTAUDIT_ALLOWED_ACCOUNTS": ACCOUNT,
        "ROTAUDIT_SCAN_TAG": f"CanaryRun={tag}",
    }
    return seeded


def _events(seeded: Seeded) -> list[str]:
    """A source rotation, and a PutSecretValue record carrying the value (as an unredacted CloudTrail record
    would); that record from a foreign account and a non-JSON message carrying the value are rejected to the DLQ.
    (The failed rotations' events come from the rotation stand-in itself: `STAND_IN_EVENTS`.)"""
    arns = seeded.arns
    put_value = build_event("PutSecretValue", arns["app"])
    put_value["detail"]["requestParameters"] = {"secretId": arns["app"], "secretString": seeded.values["app-json"]}
    return [
        json.dumps(put_value),
        json.dumps({**put_value, "account": "999999999999"}),
        f"password={seeded.values['app']}",
        json.dumps(build_event("RotationSucceeded", arns["source"])),
    ]


def _operate(env: dict[str, str], seeded: Seeded, export: Path) -> list[CliRun]:
    """What an operator runs, in CLI_LABELS order; the real replay in its own process, so a replay that never ends
    can be stopped."""
    # A pair configured with a password in it: exit 78, naming the key, never the value.
    leaky = [{"name": "x", "source": "s", "target": "t", "password": seeded.values["app"]}]
    bad_config = {**env, "ROTAUDIT_SYNC_PAIRS": json.dumps(leaky)}
    runs = [
        run_cli_here(env, "scan", "--once"),
        run_cli_here(env, "history", f"{seeded.name}/app", "--json"),
        run_cli_here(env, "sync", "--once"),
        run_cli_here(bad_config, "sync", "--once"),
        run_cli_here(env, "dlq", "inspect"),
        run_cli_here(env, "report", "--json"),
        run_cli_here(env, "dlq", "inspect", "--json"),
        run_cli_here(env, "dlq", "replay", "--dry-run", "--json"),
    ]
    runs += run_cli((env, ("dlq", "replay", "--reason", "not_json", "--hold", "10")), timeout_s=20)
    return [*runs, run_cli_here(env, "dlq", "export", "--out", str(export))]


@pytest.fixture(scope="module")
def world(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> World:
    """Provision, seed canary secrets, run the daemon and the CLI over them, capture everything."""
    endpoint, tmp, canary = emulator.endpoint_url, tmp_path_factory.mktemp("canaries"), Canary()

    async def provisioned() -> dict[str, str]:
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            return await provision(aws, f"c{canary.token[:8]}")

    stack = asyncio.run(provisioned())
    seeded = _seed(endpoint, stack, canary)
    tap = sns_tap(endpoint, stack["topic_arn"])
    export = tmp / "dlq.jsonl"
    # Decide a second after the failure; the app's RotateSecret retry falls due long after the run.
    settle = {
        "ROTAUDIT_REMEDIATION_SETTLE_S": "1",
        "ROTAUDIT_REMEDIATION_POLL_S": "1",
        "ROTAUDIT_REMEDIATION_RETRY_BASE_S": "600",
    }
    daemon = DaemonProcess(daemon_env(endpoint, stack, ROTAUDIT_LOG_LEVEL="debug", **settle, **seeded.settings), tmp)
    try:
        daemon.wait_ready()
        new_value = json.dumps({"username": "app", "password": seeded.values["rotated"]})
        boto("secretsmanager", endpoint).put_secret_value(SecretId=seeded.arns["source"], SecretString=new_value)
        sent = send(endpoint, stack["queue_url"], [(body, {}) for body in _events(seeded)])
        wait_until(lambda: daemon.total("rotaudit_messages_deleted_total") >= sent + STAND_IN_EVENTS, timeout_s=30)
        wait_until(lambda: queue_depth(endpoint, tap) >= 4, timeout_s=30)  # needs_human, the sync alerts
        # The app's failed setSecret: its pending version held, AWSPENDING removed, a RotateSecret scheduled.
        scheduled = {"action": "rotate", "outcome": "scheduled"}
        wait_until(lambda: daemon.samples("rotaudit_remediations_total").get(_labels(scheduled)), timeout_s=30)
        runs = _operate(cli_env(endpoint, stack, **seeded.settings), seeded, export)
        # The replayed message comes back, and the daemon rejects it again.
        wait_until(lambda: daemon.total("rotaudit_messages_rejected_total") >= 3, timeout_s=30)
        metrics = daemon.get("/metrics")[1]
    finally:
        exit_code = daemon.stop()
    assert exit_code == 0

    items = [from_dynamo(item) for item in scan_table(endpoint, stack["table_name"])]
    notes = [json.loads(m["Body"]) for m in receive_all(endpoint, tap)]
    dead = receive_all(endpoint, stack["dlq_url"])
    cli_lines = [f"{' '.join(run.args)}: {line}" for run in runs for line in (run.stdout + run.stderr).splitlines()]
    sm = boto("secretsmanager", endpoint)
    answers = seeded.answers + [
        sm.get_secret_value(SecretId=s) for s in (seeded.arns["source"], f"{seeded.name}/DATABASE_URL")
    ]
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600
    return World(
        sinks={
            "daemon log lines": daemon.log_lines(),
            "CLI output lines": cli_lines,
            "metrics exposition lines": metrics.splitlines(),
            "audit items": documents(items),
            "SNS messages": [json.dumps(note) for note in notes],
            "DLQ message attributes": documents(m.get("MessageAttributes", {}) for m in dead),
        },
        controls={
            "GetSecretValue": documents({k: v for k, v in a.items() if k != "CreatedDate"} for a in answers),
            "DLQ bodies": [m["Body"] for m in dead],
            "export file": export.read_text().splitlines(),
        },
        needles={**canary.needles(seeded.values.values()), "pending-password": seeded.pending_password},
        items=items,
        notes=notes,
        dlq_reasons=sorted(m["MessageAttributes"]["rotaudit.reject_reason"]["StringValue"] for m in dead),
        cli=dict(zip(CLI_LABELS, runs, strict=True)),
        arns=seeded.arns,
        rotated_form=f"value{list(seeded.values).index('rotated')}-percent",
    )


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A metric sample's key in `DaemonProcess.samples`."""
    return tuple(sorted(labels.items()))


@pytest.mark.parametrize("offset", range(4))
def test_the_search_finds_every_encoded_form(offset: int) -> None:
    """A value inside other text, in each encoding rotaudit could leak it in, is found at any alignment."""
    canary = Canary()
    value = canary.value("x")
    needles = canary.needles([value])
    data = b"." * offset + value.encode() + b"!"
    encodings = {
        "as it is": value,
        "in JSON": json.dumps({"k": value}),
        "upper-cased": value.upper(),
        "cut short": value[:19],
        "percent-encoded": quote(value, safe=""),
        "form-encoded": quote_plus(value),
        "hex": data.hex(),
        "base64": base64.b64encode(data).decode(),
        "base64url": base64.urlsafe_b64encode(data).decode(),
        "sha256": hashlib.sha256(value.encode()).hexdigest().upper(),
    }
    missed = [what for what, text in encodings.items() if not search({"s": [f"x {text} y"]}, needles).hits]
    assert missed == []
    assert search({"s": ["CANARY-" + uuid.uuid4().hex, "nothing here"]}, needles).hits == []


@pytest.mark.slow
def test_the_search_finds_canaries_where_secret_values_belong(world: World) -> None:
    """The search is not vacuous: it finds the canaries in Secrets Manager's answers, the DLQ bodies, the export."""
    found = search(world.controls, world.needles)
    forms = {sink: {hit.split(": ")[1] for hit in found.hits if hit.startswith(f"{sink}[")} for sink in world.controls}
    assert "marker" in forms["GetSecretValue"]
    assert world.rotated_form in forms["GetSecretValue"], "the DATABASE_URL's percent-encoded password is found"
    assert "marker" in forms["DLQ bodies"]
    assert "marker" in forms["export file"]


@pytest.mark.slow
def test_every_feature_ran_over_the_canary_secrets(world: World) -> None:
    """Audit, remediation, scan, sync (an update and three kinds of failure), SNS, DLQ and replay all ran."""
    assert "killed after" not in world.cli["replay"].stderr, "dlq replay never ended: it replays what it sent back"
    codes = {label: run.code for label, run in world.cli.items()}
    assert codes == {label: {"sync": 1, "sync-bad-config": 78}.get(label, 0) for label in CLI_LABELS}, {
        label: run.stderr[-300:] for label, run in world.cli.items()
    }
    kinds = Counter(item.get("kind") for item in world.items)
    assert {"event", "remediation", "scan", "sync", "dlq_replay"} <= set(kinds), kinds
    remediations = {item["secret_arn"]: item["status"] for item in world.items if item.get("kind") == "remediation"}
    assert set(remediations) == {world.arns["app"], world.arns["human"]}
    assert remediations[world.arns["human"]] == "needs_human"
    assert remediations[world.arns["app"]] == "retry_due"
    (app,) = [
        item for item in world.items if item.get("kind") == "remediation" and item["secret_arn"] == world.arns["app"]
    ]
    assert [(r["action"], r["result"]) for r in app["results"]] == [("hold", "applied"), ("remove_pending", "applied")]
    syncs = {(i["pair"], i["status"], i.get("reason", "")) for i in world.items if i.get("kind") == "sync"}
    assert ("db-url", "updated", "") in syncs
    assert ("render-fails", "error", "target_unparseable") in syncs
    assert ("source-garbage", "error", "source_unparseable") in syncs
    assert ("aws-error", "error", "aws_error") in syncs
    notes = Counter(json.loads(note["Message"])["kind"] for note in world.notes)
    assert notes["needs_human"] >= 1
    assert notes["rotaudit.sync"] >= 3
    assert world.dlq_reasons == ["account_not_allowed", "not_json"]


SINKS = (
    "daemon log lines",
    "CLI output lines",
    "metrics exposition lines",
    "audit items",
    "SNS messages",
    "DLQ message attributes",
)


@pytest.mark.slow
@pytest.mark.parametrize("sink", SINKS)
def test_no_canary_reaches(world: World, sink: str) -> None:
    """No form of any secret value appears in what rotaudit emits to this sink."""
    findings = search({sink: world.sinks[sink]}, world.needles)
    print(f"\ncanary search: {findings}")
    assert findings.searched[sink] > 0
    assert findings.hits == [], str(findings)
