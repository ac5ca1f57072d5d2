"""Parse one SQS message body into a typed Secrets Manager rotation event, or a reasoned rejection.

Pure: no I/O, no logging, no clock. `parse_message` never raises on bad input: every problem becomes a
`Rejection` whose `reason` comes from a closed set (a metric label and an SQS message attribute) and whose
`detail` names fields, never values — except a validated account id, region or event name.

Accepted (AWS-FACTS.md §1): EventBridge events from `aws.secretsmanager` with detail-type
"AWS Service Event via CloudTrail" (RotationStarted, RotationFailed, ...), "AWS API Call via CloudTrail"
(RotateSecret, PutSecretValue, ...) or "Secret Label Updated", delivered raw (no SNS envelope).
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.errors import RotauditError

MAX_BODY_BYTES = 1_048_576
MAX_DETAIL_CHARS = 200
MAX_ERROR_MESSAGE_CHARS = 1000
MAX_LABEL_CHARS = 2048

SOURCE = "aws.secretsmanager"
EVENT_SOURCE = "secretsmanager.amazonaws.com"
LABEL_EVENT = "SecretLabelUpdated"
ROTATION_OUTCOMES = frozenset({"RotationSucceeded", "RotationFailed", "RotationAbandoned"})
ROTATION_EVENTS = ROTATION_OUTCOMES | frozenset(
    {"RotationStarted", "TestRotationStarted", "TestRotationSucceeded", "TestRotationFailed"}
)
API_CALL_EVENTS = frozenset({"RotateSecret", "CancelRotateSecret", "PutSecretValue", "UpdateSecretVersionStage"})

_KIND_BY_DETAIL_TYPE = {
    "AWS Service Event via CloudTrail": "service",
    "AWS API Call via CloudTrail": "api_call",
    "Secret Label Updated": "label",
}
_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
_SECRET_ARN_RE = re.compile(
    rf"arn:(?:aws|aws-cn|aws-us-gov):secretsmanager:(?P<region>{_REGION}):(?P<account>[0-9]{{12}}):"
    r"secret:(?P<name>[A-Za-z0-9/_+=.@!-]{1,512})-[A-Za-z0-9]{6}"
)
_REGION_RE = re.compile(_REGION)
_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ROTATION_REQUEST_RE = re.compile(rf"Rotation-(?P<arn>arn:\S+)-(?P<uuid>{_UUID})")
# Ids end up in DynamoDB sort keys joined by '#'.
_KEY_PART_RE = re.compile(r"[\x20-\x22\x24-\x7e]{1,256}")
_EVENT_NAME_RE = re.compile(r"[A-Za-z0-9]{1,64}")
_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}"  # date, hours and minutes
    r"(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?"  # optional seconds and fraction
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"  # optional zone; naive means UTC
)
_LABEL_NAMESPACE = uuid.UUID("1d7e4c52-8a0b-4f7e-9c55-3b6a2e9d0f17")
_FAILED_STEP_RE = re.compile(r"\b(createSecret|setSecret|testSecret|finishSecret) step\b")


class RejectReason(enum.StrEnum):
    """Why a message is not a rotation event we audit (closed set: a metric label and a DLQ attribute)."""

    NOT_JSON = "not_json"
    TOO_LARGE = "too_large"
    NOT_AN_EVENT = "not_an_event"
    WRONG_SOURCE = "wrong_source"
    UNKNOWN_EVENT = "unknown_event"
    ACCOUNT_NOT_ALLOWED = "account_not_allowed"
    REGION_NOT_ALLOWED = "region_not_allowed"
    NO_SECRET = "no_secret"  # noqa: S105 - a reason code, not a password
    BAD_FIELD = "bad_field"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that will never become an event; `detail` names fields, never secret-bearing values."""

    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class RotationEvent:
    """One Secrets Manager rotation, API-call or label event, with the secret identified by full ARN."""

    event_name: str
    kind: str
    secret_arn: str
    secret_name: str
    rotation_id: str
    event_id: str
    event_time: datetime
    account: str | None
    region: str | None
    envelope_id: str | None
    failed_step: str | None
    error_message: str | None
    version_id: str | None = None
    label: str | None = None

    @property
    def is_test(self) -> bool:
        """True for TestRotation* events (RotateSecret with RotateImmediately=false)."""
        return self.event_name.startswith("TestRotation")

    @property
    def is_rotation_outcome(self) -> bool:
        """True when a real rotation ended: succeeded, failed or abandoned."""
        return self.event_name in ROTATION_OUTCOMES


class _Rejected(RotauditError):
    """Internal short-circuit out of the parsing helpers; never escapes `parse_message`."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(reason)
        self.rejection = Rejection(reason, detail[:MAX_DETAIL_CHARS])


def parse_secret_arn(arn: str) -> tuple[str, str, str] | None:
    """Split a full secret ARN into (region, account, name without AWS's 6-char suffix), else None."""
    match = _SECRET_ARN_RE.fullmatch(arn) if len(arn) <= 2048 else None
    if match is None:
        return None
    return match["region"], match["account"], match["name"]


def parse_message(
    body: str | bytes,
    *,
    allowed_accounts: frozenset[str] = frozenset(),
    allowed_regions: frozenset[str] = frozenset(),
) -> RotationEvent | Rejection:
    """Never raises (anything other than bugs); every bad input is a Rejection."""
    try:
        return _parse_event(_load(body), allowed_accounts, allowed_regions)
    except _Rejected as rejected:
        return rejected.rejection


def _load(body: str | bytes) -> dict[str, object]:
    if isinstance(body, str):
        size = len(body) if body.isascii() else len(body.encode("utf-8", "surrogatepass"))
    else:
        size = len(body)
    if size > MAX_BODY_BYTES:
        raise _Rejected(RejectReason.TOO_LARGE, f"body is {size} bytes, over the {MAX_BODY_BYTES}-byte limit")
    try:
        text = body.removeprefix("\ufeff") if isinstance(body, str) else body.decode("utf-8-sig")
        value = json.loads(text, parse_constant=_not_a_json_number)
    except UnicodeDecodeError:
        raise _Rejected(RejectReason.NOT_JSON, "body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise _Rejected(RejectReason.NOT_JSON, "body is not JSON (or nests too deeply)") from None
    if not isinstance(value, dict):
        raise _Rejected(RejectReason.NOT_JSON, "body is JSON but not an object")
    return value


def _not_a_json_number(name: str) -> object:
    """NaN, Infinity and -Infinity: Python's json reads them, but they are not JSON (RFC 8259)."""
    raise ValueError(f"{name} is not a JSON number")


def _parse_event(
    envelope: dict[str, object], allowed_accounts: frozenset[str], allowed_regions: frozenset[str]
) -> RotationEvent:
    kind, detail = _classify(envelope)
    event_name = LABEL_EVENT if kind == "label" else _event_name(detail)
    request_id = _text(detail, "requestID")
    rotation_request = _ROTATION_REQUEST_RE.fullmatch(request_id) if request_id else None
    candidates = _secret_candidates(envelope, detail, kind)
    if rotation_request:
        candidates.append(rotation_request["arn"])
    secret_arn, (arn_region, arn_account, secret_name) = _find_secret(candidates)

    envelope_id = _text(envelope, "id")
    event_time = _event_time(envelope, detail)
    version_id = _version_id(detail, kind)
    labels = _label(detail) if kind == "label" else None
    event_id = _text(detail, "eventID") or (
        _label_event_id(secret_arn, version_id, labels, event_time) if kind == "label" else envelope_id
    )
    if event_id is None:
        raise _Rejected(RejectReason.NOT_AN_EVENT, "no eventID or id: the event cannot be identified")
    rotation_id = rotation_request["uuid"].lower() if rotation_request else request_id or event_id
    for key_part, field in ((envelope_id, "id"), (event_id, "eventID")):
        if key_part is not None:
            _check_key_part(key_part, field)
    _check_key_part(rotation_id, "rotation id (requestID/eventID/id)")

    account = (
        _text(envelope, "account")
        or _text(detail, "recipientAccountId")
        or _text(detail, "userIdentity", "accountId")
        or arn_account
    )
    if not _ACCOUNT_RE.fullmatch(account):
        raise _Rejected(RejectReason.BAD_FIELD, "account/recipientAccountId is not a 12-digit account id")
    region = _text(envelope, "region") or _text(detail, "awsRegion") or arn_region
    if not _REGION_RE.fullmatch(region):
        raise _Rejected(RejectReason.BAD_FIELD, "region/awsRegion is not an AWS region name")
    _check_allowed(RejectReason.ACCOUNT_NOT_ALLOWED, "account", (account, arn_account), allowed_accounts)
    _check_allowed(RejectReason.REGION_NOT_ALLOWED, "region", (region, arn_region), allowed_regions)

    error_message = _text(detail, "errorMessage")
    step = _FAILED_STEP_RE.search(error_message) if error_message else None
    return RotationEvent(
        event_name=event_name,
        kind=kind,
        secret_arn=secret_arn,
        secret_name=secret_name,
        rotation_id=rotation_id,
        event_id=event_id,
        event_time=event_time,
        account=account,
        region=region,
        envelope_id=envelope_id,
        failed_step=step[1] if step else None,
        error_message=error_message[:MAX_ERROR_MESSAGE_CHARS] if error_message else None,
        version_id=version_id,
        label=labels,
    )


def _label_event_id(secret_arn: str, version_id: str | None, labels: str | None, event_time: datetime) -> str:
    """A label move's id from what it is: secret, version, label and time.

    `Secret Label Updated` events carry no CloudTrail eventID, and an EventBridge archive replay gives each replayed
    event a new envelope `id` (AWS-FACTS §1): keyed on that, a replay would be audited a second time.
    """
    basis = "\x1f".join((secret_arn, version_id or "", labels or "", event_time.isoformat()))
    return f"label-{uuid.uuid5(_LABEL_NAMESPACE, basis)}"


def _classify(envelope: dict[str, object]) -> tuple[str, dict[str, object]]:
    """Check the envelope is a Secrets Manager event of a handled detail-type: (kind, detail)."""
    source, detail_type, detail = envelope.get("source"), envelope.get("detail-type"), envelope.get("detail")
    if not (isinstance(source, str) and isinstance(detail_type, str) and isinstance(detail, dict)):
        raise _Rejected(
            RejectReason.NOT_AN_EVENT,
            "not an EventBridge event: source, detail-type or detail missing or ill-typed",
        )
    if source != SOURCE or detail.get("eventSource") not in (None, EVENT_SOURCE):
        raise _Rejected(
            RejectReason.WRONG_SOURCE, f"source is not {SOURCE} or detail.eventSource is not {EVENT_SOURCE}"
        )
    kind = _KIND_BY_DETAIL_TYPE.get(detail_type)
    if kind is None:
        raise _Rejected(RejectReason.UNKNOWN_EVENT, "detail-type is not one rotaudit handles")
    return kind, detail


def _event_name(detail: dict[str, object]) -> str:
    name = _text(detail, "eventName")
    if name is not None and (name in ROTATION_EVENTS or name in API_CALL_EVENTS):
        return name
    shown = name if name is not None and _EVENT_NAME_RE.fullmatch(name) else "(missing or malformed)"
    raise _Rejected(RejectReason.UNKNOWN_EVENT, f"eventName {shown} is not one rotaudit handles")


def _secret_candidates(envelope: dict[str, object], detail: dict[str, object], kind: str) -> list[object]:
    """Every place a secret ARN has been seen, the documented ones for this kind first.

    Managed rotation (`rds!...` secrets) has undocumented shapes, so the other kinds' places are tried too.
    """
    resources = envelope.get("resources")
    by_kind: dict[str, list[object]] = {
        # rds! managed rotation may carry it in serviceEventDetails.secretId (AWS-FACTS §1: a third-party sample).
        "service": [_dig(detail, "additionalEventData", "SecretId"), _dig(detail, "serviceEventDetails", "secretId")],
        "api_call": [
            _dig(detail, "responseElements", "arn"),
            _dig(detail, "responseElements", "aRN"),
            _dig(detail, "requestParameters", "secretId"),
        ],
        "label": [
            *(resources if isinstance(resources, list) else []),
            detail.get("secretId"),
            detail.get("SecretId"),
        ],
    }
    ordered = by_kind.pop(kind)
    for others in by_kind.values():
        ordered.extend(others)
    return ordered


def _find_secret(candidates: list[object]) -> tuple[str, tuple[str, str, str]]:
    for candidate in candidates:
        if isinstance(candidate, str) and (parsed := parse_secret_arn(candidate)):
            return candidate, parsed
    raise _Rejected(
        RejectReason.NO_SECRET,
        "no full secret ARN in additionalEventData.SecretId, serviceEventDetails.secretId, responseElements.arn/aRN, "
        "requestParameters.secretId, resources, secretId or requestID",
    )


def _check_key_part(value: str, field: str) -> None:
    if not _KEY_PART_RE.fullmatch(value):
        raise _Rejected(RejectReason.BAD_FIELD, f"{field} is not 1-256 printable ASCII characters without '#'")


def _check_allowed(reason: RejectReason, what: str, values: tuple[str, str], allowed: frozenset[str]) -> None:
    # Both the event's own and the secret ARN's value must pass: one forged field is not enough.
    for value in values:
        if allowed and value not in allowed:
            raise _Rejected(reason, f"{what} {value} is not allowed")


def _event_time(envelope: dict[str, object], detail: dict[str, object]) -> datetime:
    raw = _text(detail, "eventTime") or _text(envelope, "time")
    if raw is None:
        raise _Rejected(RejectReason.NOT_AN_EVENT, "no eventTime or time")
    try:
        if not _TIMESTAMP_RE.fullmatch(raw):
            raise ValueError(raw)
        parsed = datetime.fromisoformat(raw)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Rejected(RejectReason.BAD_FIELD, "eventTime/time is not an ISO-8601 timestamp") from None


def _version_id(detail: dict[str, object], kind: str) -> str | None:
    if kind == "label":
        version_id = _text(detail, "versionId")
    elif kind == "api_call":
        version_id = _text(detail, "responseElements", "versionId")
    else:
        return None
    if version_id is not None:
        _check_key_part(version_id, "versionId")
    return version_id


def _label(detail: dict[str, object]) -> str | None:
    raw = detail.get("labelUpdated")
    if raw is None or isinstance(raw, str):
        labels = raw
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        labels = ",".join(raw)
    else:
        raise _Rejected(RejectReason.BAD_FIELD, "labelUpdated is not a string or a list of strings")
    if labels is not None and len(labels) > MAX_LABEL_CHARS:
        raise _Rejected(RejectReason.BAD_FIELD, f"labelUpdated is over {MAX_LABEL_CHARS} characters")
    if labels is not None and not _is_unicode(labels):
        raise _Rejected(RejectReason.BAD_FIELD, "labelUpdated holds a lone surrogate")
    return labels or None


def _dig(value: object, *path: str) -> object:
    """The value at `path` through nested objects; None where a level is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: object, *path: str) -> str | None:
    """A string field, None when missing, null or empty; any other type is a BAD_FIELD."""
    found = _dig(value, *path)
    if found is None or found == "":
        return None
    if not isinstance(found, str):
        raise _Rejected(RejectReason.BAD_FIELD, f"{'.'.join(path)} is not a string")
    if not _is_unicode(found):
        raise _Rejected(RejectReason.BAD_FIELD, f"{'.'.join(path)} holds a lone surrogate")
    return found


def _is_unicode(text: str) -> bool:
    """False when `text` holds a lone surrogate: JSON can escape one, but UTF-8 (so DynamoDB, SNS, SQS) cannot."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
