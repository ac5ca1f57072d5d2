"""`rotaudit local` (what `make run` runs): emulator, resources, demo secrets and events, then the daemon.

Everything runs in this process: the emulator on its own threads (with its rotation engine stand-in), the daemon
on the event loop. The demo's stale secret really fails to rotate on the stand-in (setSecret, three times: every
attempt of Secrets Manager's retries), and the daemon remediates it until a rotation succeeds. Ctrl-C drains the
daemon and stops the emulator.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

from daemon.aws import Aws
from daemon.config import load_config, no_color
from daemon.emit import build_event, publish
from daemon.errors import EXIT_FAILURE, PermanentAwsError, StartupError
from daemon.logs import configure_logging

DEMO_PREFIX = "rotaudit-demo"
DEMO_REGION = "us-east-1"
STALE = f"{DEMO_PREFIX}-stale"
DEMO_SECRETS = {
    f"{DEMO_PREFIX}-fresh": {"Managed": "true"},
    STALE: {"Managed": "true", "rotaudit:strategy": "single-user"},
    f"{DEMO_PREFIX}-ignored": {"Managed": "false"},
}
DEMO_FUNCTION_ARN = f"arn:aws:lambda:{DEMO_REGION}:123456789012:function:{DEMO_PREFIX}-rotation"
# The stale secret's rotation function fails setSecret this many times: the first rotation's attempt and Secrets
# Manager's two retries (the stand-in's count), so only rotaudit's own RotateSecret gets through.
SET_SECRET_FAILURES = 3
# The demo daemon decides a failure 5 s after its last record, retries RotateSecret 6-12 s later and looks for
# due work every 2 s, so the loop closes in well under a minute (production: 2 h, 30-60 s, 15 s). Its claim lease
# (20 s) keeps a 5 s margin, below the retry delay, so one holder carries a pass through.
DEMO_SETTINGS = {
    "ROTAUDIT_REMEDIATION_SETTLE_S": "5",
    "ROTAUDIT_REMEDIATION_RETRY_BASE_S": "12",
    "ROTAUDIT_REMEDIATION_POLL_S": "2",
    "ROTAUDIT_CLAIM_LEASE_S": "20",
}


def demo_value(name: str) -> str:
    """A throwaway value; the stale secret holds database credentials, as a rotation function expects."""
    if name == STALE:
        return json.dumps(
            {"engine": "postgres", "host": "db.internal", "username": "app", "password": uuid.uuid4().hex}
        )
    return f"demo-{uuid.uuid4()}"


async def seed(aws: Aws) -> dict[str, str]:
    """Create the demo secrets (idempotently) and return name -> ARN. The values are throwaway demo strings."""
    arns: dict[str, str] = {}
    for name, tags in DEMO_SECRETS.items():
        try:
            created = await aws.call(
                "secretsmanager",
                "create_secret",
                Name=name,
                SecretString=demo_value(name),
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
            arns[name] = str(created["ARN"])
        except PermanentAwsError as exc:
            if exc.code != "ResourceExistsException":
                raise
            arns[name] = str((await aws.call("secretsmanager", "describe_secret", SecretId=name))["ARN"])
    return arns


async def demo_scenario(aws: Aws, arns: dict[str, str]) -> str:
    """One rotation that succeeds (published as events, and delivered twice) and one that really fails on the
    rotation stand-in, in setSecret, every attempt. Returns the failing rotation's token."""
    from daemon.devtools.rotation.control import configure
    from daemon.devtools.rotation.engine import engine

    fresh, ok_rotation = arns[f"{DEMO_PREFIX}-fresh"], str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        build_event("RotationStarted", fresh, rotation_id=ok_rotation, when=now - timedelta(seconds=40)),
        build_event("RotationSucceeded", fresh, rotation_id=ok_rotation, when=now - timedelta(seconds=30)),
    ]
    for envelope in events:
        await publish(aws, envelope, via="eventbridge")
    await publish(aws, events[-1], via="eventbridge")  # EventBridge delivers at least once: a duplicate
    failures = [{"step": "setSecret", "times": SET_SECRET_FAILURES}]
    request = {"secret_id": arns[STALE], "failures": failures, "function_arn": DEMO_FUNCTION_ARN}
    configure(engine(), {**request, "region": DEMO_REGION})
    rotated = await aws.call(
        "secretsmanager", "rotate_secret", SecretId=arns[STALE], RotationRules={"AutomaticallyAfterDays": 30}
    )
    return str(rotated["VersionId"])


async def run_local(host: str, port: int, http_port: int) -> int:
    """Start everything and run the daemon in the foreground until Ctrl-C."""
    from daemon.app import Daemon
    from daemon.devtools.emulator import backdate_secret, start_emulator
    from daemon.provision import provision

    if importlib.util.find_spec("moto") is None:  # the emulator imports moto only as it starts
        print("rotaudit local needs moto, the emulator extra: pip install -e '.[emulator]'", file=sys.stderr)
        return EXIT_FAILURE
    configure_logging("info", "auto", color=not no_color())
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        os.environ.setdefault(key, value)
    try:
        emulator = start_emulator(host, port)
    except OSError as exc:
        raise StartupError(f"cannot start the emulator on {host}:{port}: {exc}") from None
    try:
        endpoint = emulator.endpoint_url
        async with Aws(DEMO_REGION, endpoint_url=endpoint) as aws:
            resources = await provision(aws, DEMO_PREFIX)
            arns = await seed(aws)
            # The stale secret's last rotation is 45 days old, so the start-up scan flags it.
            backdate_secret(STALE, 45, region=DEMO_REGION)
            await demo_scenario(aws, arns)
        env = {
            **DEMO_SETTINGS,
            "AWS_REGION": DEMO_REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "ROTAUDIT_QUEUE_URL": resources["queue_url"],
            "ROTAUDIT_AUDIT_TABLE": resources["table_name"],
            "ROTAUDIT_SNS_TOPIC_ARN": resources["topic_arn"],
            "ROTAUDIT_HTTP_PORT": str(http_port),
            "ROTAUDIT_LOG_FORMAT": "console" if sys.stderr.isatty() else "json",
        }
        creds = "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
        print(
            "\n".join(
                [
                    f"rotaudit local: emulator at {endpoint}, resources provisioned with prefix {DEMO_PREFIX!r}",
                    f"  metrics:  http://127.0.0.1:{http_port}/metrics   health: http://127.0.0.1:{http_port}/healthz",
                    f"  audit:    {creds} aws --endpoint-url {endpoint} --region {DEMO_REGION} dynamodb scan "
                    f"--table-name {resources['table_name']} --output table "
                    "--query 'Items[?secret_name].[kind.S,secret_name.S,"
                    "event_name.S||status.S,rotation_id.S||run_id.S]'",
                    f"  history:  {creds} .venv/bin/rotaudit history {STALE} --table {resources['table_name']} "
                    f"--region {DEMO_REGION} --endpoint-url {endpoint}",
                    "  Ctrl-C stops everything.",
                    "",
                ]
            ),
            flush=True,
        )
        config = load_config({**os.environ, **env})
        configure_logging(config.log_level, config.log_format, color=not no_color())
        return await Daemon(config).run()
    finally:
        emulator.stop()
