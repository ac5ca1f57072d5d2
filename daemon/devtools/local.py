"""`rotaudit local` (what `make run` runs): emulator, resources, demo secrets and events, then the daemon.

Everything runs in this process: the emulator on its own threads, the daemon on the event loop. Ctrl-C
drains the daemon and stops the emulator.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

from daemon.aws import Aws
from daemon.config import load_config
from daemon.emit import build_event, publish
from daemon.errors import EXIT_FAILURE, PermanentAwsError, StartupError
from daemon.logs import configure_logging

DEMO_PREFIX = "rotaudit-demo"
DEMO_REGION = "us-east-1"
DEMO_SECRETS = {
    f"{DEMO_PREFIX}-fresh": {"Managed": "true"},
    f"{DEMO_PREFIX}-stale": {"Managed": "true"},
    f"{DEMO_PREFIX}-ignored": {"Managed": "false"},
}


async def seed(aws: Aws) -> dict[str, str]:
    """Create the demo secrets (idempotently) and return name -> ARN. The values are throwaway demo strings."""
    arns: dict[str, str] = {}
    for name, tags in DEMO_SECRETS.items():
        try:
            created = await aws.call(
                "secretsmanager",
                "create_secret",
                Name=name,
                SecretString=f"demo-{uuid.uuid4()}",
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
            arns[name] = str(created["ARN"])
        except PermanentAwsError as exc:
            if exc.code != "ResourceExistsException":
                raise
            arns[name] = str((await aws.call("secretsmanager", "describe_secret", SecretId=name))["ARN"])
    return arns


async def demo_scenario(aws: Aws, arns: dict[str, str]) -> None:
    """One rotation that succeeds, one that fails in setSecret, and a duplicate delivery of the failure."""
    fresh, stale = arns[f"{DEMO_PREFIX}-fresh"], arns[f"{DEMO_PREFIX}-stale"]
    ok_rotation, bad_rotation = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        build_event("RotationStarted", fresh, rotation_id=ok_rotation, when=now - timedelta(seconds=40)),
        build_event("RotationSucceeded", fresh, rotation_id=ok_rotation, when=now - timedelta(seconds=30)),
        build_event("RotationStarted", stale, rotation_id=bad_rotation, when=now - timedelta(seconds=20)),
        build_event(
            "RotationFailed", stale, rotation_id=bad_rotation, step="setSecret", when=now - timedelta(seconds=10)
        ),
    ]
    for envelope in events:
        await publish(aws, envelope, via="eventbridge")
    await publish(aws, events[-1], via="eventbridge")  # EventBridge delivers at least once: a duplicate


async def run_local(host: str, port: int, http_port: int) -> int:
    """Start everything and run the daemon in the foreground until Ctrl-C."""
    from daemon.app import Daemon
    from daemon.devtools.emulator import backdate_secret, start_emulator
    from daemon.provision import provision

    if importlib.util.find_spec("moto") is None:  # the emulator imports moto only as it starts
        print("rotaudit local needs moto, the emulator extra: pip install -e '.[emulator]'", file=sys.stderr)
        return EXIT_FAILURE
    configure_logging("info", "auto")
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
            backdate_secret(f"{DEMO_PREFIX}-stale", 45, region=DEMO_REGION)
            await demo_scenario(aws, arns)
        env = {
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
                    f"  history:  {creds} AWS_REGION={DEMO_REGION} AWS_ENDPOINT_URL={endpoint} "
                    f".venv/bin/rotaudit history {DEMO_PREFIX}-stale --table {resources['table_name']}",
                    "  Ctrl-C stops everything.",
                    "",
                ]
            ),
            flush=True,
        )
        config = load_config({**os.environ, **env})
        configure_logging(config.log_level, config.log_format)
        return await Daemon(config).run()
    finally:
        emulator.stop()
