"""The emulator's rotation endpoints: configure a secret's stand-in function, and read its state without a password.

- `POST /_rotaudit/rotation/configure` (JSON: `secret_id`, optional `region`, `strategy` single-user |
  alternating-users | generic, `failures` [{`step`, `times` (null: always), `after`}], `retries`,
  `retry_delay_s`, `step_delay_s`, `function_arn`): sets the function and its faults and seeds the fake database
  with AWSCURRENT's username and password.
- `GET /_rotaudit/rotation/state?secret_id=...[&region=...]`: version ids and their labels, whether AWSCURRENT
  logs in now (`current_works`), which versions hold a password the database accepts (`db_accepts`) and which
  of those carry no label (`unlabelled_held`), each rotation's attempts and outcomes, and RotateSecret calls
  refused (`refusals`). Ids, booleans and step names only: never a password, never a username.
- `GET /_rotaudit/rotation/idle`: whether any rotation is still running in this emulator.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from daemon.devtools.rotation.client import SECRETS_LOCK, secrets_backend
from daemon.devtools.rotation.engine import Rotation, RotationEngine, SecretRecord, Settings, engine
from daemon.devtools.rotation.function import STEPS, STRATEGIES, Failure, credentials

PREFIX = "/_rotaudit/rotation/"
CONFIGURE_PATH = PREFIX + "configure"
STATE_PATH = PREFIX + "state"
IDLE_PATH = PREFIX + "idle"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


class BadRequest(Exception):
    """The request cannot be served: `status` and a message naming what is wrong (never a value)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle(method: str, path: str, query: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Serve one request under PREFIX: (HTTP status, JSON payload)."""
    the_engine = engine()
    try:
        if not the_engine.installed:
            raise BadRequest(409, "the rotation stand-in is not installed (emulator started without patches)")
        if path == CONFIGURE_PATH and method == "POST":
            return 200, configure(the_engine, _json_object(body))
        if path == STATE_PATH and method == "GET":
            params = {key: values[0] for key, values in parse_qs(query).items()}
            return 200, state(the_engine, _require_text(params, "secret_id"), params.get("region"))
        if path == IDLE_PATH and method == "GET":
            return 200, {"idle": the_engine.idle()}
        raise BadRequest(404, f"no such endpoint: {method} {path}")
    except BadRequest as bad:
        return bad.status, {"error": str(bad)}


def configure(the_engine: RotationEngine, request: dict[str, Any]) -> dict[str, Any]:
    secret_id = _require_text(request, "secret_id")
    strategy = request.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise BadRequest(400, f"strategy must be one of {', '.join(STRATEGIES)}")
    settings = Settings(
        strategy=strategy,
        failures=tuple(_failure(item) for item in _list(request, "failures")),
        retries=int(_number(request, "retries", Settings.retries)),
        retry_delay_s=_number(request, "retry_delay_s", Settings.retry_delay_s),
        step_delay_s=_number(request, "step_delay_s", Settings.step_delay_s),
    )
    function_arn = request.get("function_arn")
    if function_arn is not None and not (isinstance(function_arn, str) and function_arn.startswith("arn:")):
        raise BadRequest(400, "function_arn must be an ARN")
    with SECRETS_LOCK:
        secret = _secret(secret_id, request.get("region"))
        record = the_engine.configure(secret, settings, function_arn)
        return {"secret_arn": secret.arn, "strategy": record.strategy, "seeded": record.database is not None}


def state(the_engine: RotationEngine, secret_id: str, region: str | None) -> dict[str, Any]:
    with SECRETS_LOCK:
        secret = _secret(secret_id, region)
        record = the_engine.records.get(secret.arn)
        labels = {version: list(data["version_stages"]) for version, data in secret.versions.items()}
        accepted = _accepted_versions(secret, record)
        current = next((version for version, stages in labels.items() if "AWSCURRENT" in stages), None)
        return {
            "secret_arn": secret.arn,
            "strategy": record.strategy if record else None,
            "configured": bool(record and record.configured),
            "labels": labels,
            "current_works": None if record is None or record.database is None else current in accepted,
            "db_accepts": sorted(accepted),
            "unlabelled_held": sorted(version for version in accepted if not labels[version]),
            "rotations": [_rotation(rotation) for rotation in record.rotations] if record else [],
            "running": bool(record and record.running()),
            "refusals": sum(record.refusals.values()) if record else 0,
            "refusals_by_reason": dict(record.refusals) if record else {},
        }


def _accepted_versions(secret: Any, record: SecretRecord | None) -> set[str]:
    """Versions whose value holds a password some user of the secret's database has now."""
    if record is None or record.database is None:
        return set()
    accepted: set[str] = set()
    for version, data in secret.versions.items():
        creds = credentials(str(data["secret_string"])) if data.get("secret_string") is not None else None
        if creds is not None and record.database.accepts(creds["password"]):
            accepted.add(version)
    return accepted


def _rotation(rotation: Rotation) -> dict[str, Any]:
    return {
        "rotation_id": rotation.request_uuid,
        "token": rotation.token,
        "test": rotation.test,
        "status": rotation.status,
        "attempts": [
            {"attempt": a.number, "outcome": a.outcome, "failed_step": a.failed_step, "reason": a.reason}
            for a in rotation.attempts
        ],
    }


def _secret(secret_id: str, region: str | None) -> Any:
    account, arn_region = DEFAULT_ACCOUNT, None
    if secret_id.startswith("arn:"):
        parts = secret_id.split(":")
        if len(parts) < 7:
            raise BadRequest(400, "secret_id is not a secret ARN")
        arn_region, account = parts[3], parts[4]
    backend = secrets_backend(account, region or arn_region or DEFAULT_REGION)
    if not backend._is_valid_identifier(secret_id):
        raise BadRequest(404, "no such secret")
    return backend.secrets[secret_id]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise BadRequest(400, "the body is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(400, "the body is not a JSON object")
    return value


def _require_text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(400, f"{key} is required")
    return value


def _list(request: dict[str, Any], key: str) -> list[Any]:
    value = request.get(key) or []
    if not isinstance(value, list):
        raise BadRequest(400, f"{key} must be a list")
    return value


def _number(request: dict[str, Any], key: str, default: float) -> float:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadRequest(400, f"{key} must be a number, 0 or more")
    return float(value)


def _failure(item: Any) -> Failure:
    if not isinstance(item, dict) or item.get("step") not in STEPS:
        raise BadRequest(400, f"each failure needs a step, one of {', '.join(STEPS)}")
    times = item.get("times", 1)
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise BadRequest(400, "failure times must be 1 or more, or null for always")
    return Failure(step=item["step"], times=times, after=bool(item.get("after", False)))
