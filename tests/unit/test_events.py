"""Table-driven tests for daemon.events: every accepted shape, every rejection, a never-raises property."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.events import (
    API_CALL_EVENTS,
    LABEL_EVENT,
    MAX_BODY_BYTES,
    ROTATION_EVENTS,
    Rejection,
    RejectReason,
    RotationEvent,
    parse_message,
    parse_secret_arn,
)
from daemon.table import event_key

ACCOUNT = "123456789012"
REGION = "us-east-2"
ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:MyDatabaseSecret-a1b2c3"
ROTATION_UUID = "eeb681b1-a07d-4aeb-9b61-1ee6590ec295"
ENVELOPE_ID = "7bf73129-1428-4cd3-a780-95db273d1602"
CANARY = "CANARY-s3cr3t-hunter2-VALUE"  # a secret value: must reach neither an event nor a rejection
ECHO = "ECHO-some-field-value"  # any other message value: must never be echoed in a rejection's detail
SERVICE, API_CALL, LABEL = (
    "AWS Service Event via CloudTrail",
    "AWS API Call via CloudTrail",
    "Secret Label Updated",
)
DROP = object()  # marks a key to delete in `edit`
REPLAYED = {"replay-name": "rotaudit-replay-1"}  # what EventBridge adds to an archived event it replays

# The RotationFailed detail from the AWS user guide, verbatim (AWS-FACTS.md §1).
AWS_SAMPLE_DETAIL: dict[str, Any] = {
    "eventVersion": "1.08",
    "userIdentity": {"accountId": "123456789012", "invokedBy": "secretsmanager.amazonaws.com"},
    "eventTime": "2022-09-13T02:17:48Z",
    "eventSource": "secretsmanager.amazonaws.com",
    "eventName": "RotationFailed",
    "awsRegion": "us-east-2",
    "sourceIPAddress": "secretsmanager.amazonaws.com",
    "userAgent": "secretsmanager.amazonaws.com",
    "errorMessage": "Error when executing lambda arn:aws:lambda:us-east-2:123456789012:function:"
    "SecretsManagertest-alternating-users-rotation2 during setSecret step",
    "requestParameters": None,
    "responseElements": None,
    "additionalEventData": {"SecretId": "arn:aws:secretsmanager:us-east-2:123456789012:secret:MyDatabaseSecret-a1b2c3"},
    "requestID": "Rotation-arn:aws:secretsmanager:us-east-2:123456789012:secret:MyDatabaseSecret-a1b2c3-"
    "eeb681b1-a07d-4aeb-9b61-1ee6590ec295",
    "eventID": "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE",
    "readOnly": False,
    "eventType": "AwsServiceEvent",
    "managementEvent": True,
    "recipientAccountId": "123456789012",
    "eventCategory": "Management",
}

API_DETAIL: dict[str, Any] = {
    "eventVersion": "1.09",
    "userIdentity": {"type": "AssumedRole", "accountId": ACCOUNT},
    "eventTime": "2024-03-01T10:00:00Z",
    "eventSource": "secretsmanager.amazonaws.com",
    "eventName": "PutSecretValue",
    "awsRegion": REGION,
    "requestParameters": {
        "secretId": "MyDatabaseSecret",
        "secretString": CANARY,
        "clientRequestToken": "t-1",
    },
    "responseElements": {"arn": ARN, "versionId": "9b8e3d2c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"},
    "requestID": "4a1c5d6e-7f80-4912-a3b4-c5d6e7f80912",
    "eventID": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "eventType": "AwsApiCall",
    "recipientAccountId": ACCOUNT,
}

LABEL_DETAIL: dict[str, Any] = {"versionId": "a1b2c3d4-e5f6-4789-8abc-def012345678", "labelUpdated": "blue"}


def dumps(value: Any) -> str:
    """JSON as EventBridge writes it: UTF-8 text, non-ASCII characters unescaped."""
    return json.dumps(value, ensure_ascii=False)


def edit(value: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of `value` with keys set, or deleted where the new value is DROP."""
    result = copy.deepcopy(value)
    for key, new in changes.items():
        if new is DROP:
            result.pop(key, None)
        else:
            result[key] = new
    return result


def envelope(detail: Any, detail_type: Any = SERVICE, **changes: Any) -> dict[str, Any]:
    """An EventBridge envelope as delivered to SQS, around `detail`."""
    event = {
        "version": "0",
        "id": ENVELOPE_ID,
        "detail-type": detail_type,
        "source": "aws.secretsmanager",
        "account": ACCOUNT,
        "time": "2022-09-13T02:17:50Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }
    return edit(event, **changes)


def service(**changes: Any) -> str:
    """A body holding the AWS sample service event, with detail keys changed."""
    return dumps(envelope(edit(AWS_SAMPLE_DETAIL, **changes)))


def api_call(**changes: Any) -> str:
    """A body holding a PutSecretValue API-call event, with detail keys changed."""
    return dumps(envelope(edit(API_DETAIL, **changes), API_CALL))


def label(resources: list[Any] | None = None, **changes: Any) -> str:
    """A body holding a Secret Label Updated event for ARN, with detail keys changed."""
    return dumps(envelope(edit(LABEL_DETAIL, **changes), LABEL, resources=[ARN] if resources is None else resources))


def accepted(body: str | bytes, **kwargs: Any) -> RotationEvent:
    """Parse `body`, failing the test with the rejection if there is one."""
    result = parse_message(body, **kwargs)
    assert isinstance(result, RotationEvent), result
    return result


def rejected(body: str | bytes, **kwargs: Any) -> Rejection:
    """Parse `body`, failing the test if it is accepted."""
    result = parse_message(body, **kwargs)
    assert isinstance(result, Rejection), result
    return result


# ------------------------------------------------------------------------------------------ accepted shapes


def test_aws_sample_rotation_failed_extracts_every_field() -> None:
    """The AWS user-guide RotationFailed sample yields every field, rotation id being the requestID's uuid."""
    assert accepted(dumps(envelope(AWS_SAMPLE_DETAIL))) == RotationEvent(
        event_name="RotationFailed",
        kind="service",
        secret_arn=ARN,
        secret_name="MyDatabaseSecret",
        rotation_id=ROTATION_UUID,
        event_id="EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE",
        event_time=datetime(2022, 9, 13, 2, 17, 48, tzinfo=UTC),
        account=ACCOUNT,
        region=REGION,
        envelope_id=ENVELOPE_ID,
        failed_step="setSecret",
        error_message=AWS_SAMPLE_DETAIL["errorMessage"],
        version_id=None,
        label=None,
    )


@pytest.mark.parametrize(
    ("name", "is_test", "is_outcome"),
    [
        pytest.param("RotationStarted", False, False, id="started"),
        pytest.param("RotationSucceeded", False, True, id="succeeded"),
        pytest.param("RotationFailed", False, True, id="failed"),
        pytest.param("RotationAbandoned", False, True, id="abandoned"),
        pytest.param("TestRotationStarted", True, False, id="test-started"),
        pytest.param("TestRotationSucceeded", True, False, id="test-succeeded"),
        pytest.param("TestRotationFailed", True, False, id="test-failed"),
    ],
)
def test_every_rotation_event_name_is_a_service_event(name: str, is_test: bool, is_outcome: bool) -> None:
    """Each of the seven rotation service events is accepted and classified as test and/or outcome."""
    event = accepted(service(eventName=name))
    assert (event.event_name, event.kind, event.secret_arn) == (name, "service", ARN)
    assert (event.is_test, event.is_rotation_outcome) == (is_test, is_outcome)
    assert name in ROTATION_EVENTS


@pytest.mark.parametrize(
    ("changes", "version_id", "error_message"),
    [
        pytest.param({}, API_DETAIL["responseElements"]["versionId"], None, id="responseElements.arn"),
        pytest.param({"responseElements": {"aRN": ARN}}, None, None, id="responseElements.aRN-pre-2024"),
        pytest.param(
            {"responseElements": None, "requestParameters": {"secretId": ARN, "secretString": CANARY}},
            None,
            None,
            id="requestParameters.secretId-arn",
        ),
        pytest.param(
            {
                "responseElements": None,
                "requestParameters": {"secretId": ARN},
                "errorCode": "InvalidRequestException",
                "errorMessage": "A previous rotation isn't complete.",
            },
            None,
            "A previous rotation isn't complete.",
            id="failed-call-keeps-error",
        ),
    ],
)
def test_api_call_secret_locations(changes: dict[str, Any], version_id: str | None, error_message: str | None) -> None:
    """API-call events find the secret in responseElements.arn, .aRN or an ARN requestParameters.secretId."""
    event = accepted(api_call(**changes))
    assert (event.kind, event.secret_arn, event.secret_name) == ("api_call", ARN, "MyDatabaseSecret")
    assert (event.version_id, event.error_message, event.failed_step) == (version_id, error_message, None)
    assert event.rotation_id == API_DETAIL["requestID"]


RDS_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-0123abcd-4567-89ef-a1b2c3"


@pytest.mark.parametrize("kind", ["service", "api_call"])
def test_managed_rotation_secret_in_service_event_details(kind: str) -> None:
    """An `rds!` managed-rotation event naming its secret only in detail.serviceEventDetails.secretId is accepted."""
    moved = {"serviceEventDetails": {"secretId": RDS_ARN}, "requestID": "r-1"}
    if kind == "service":
        body = service(additionalEventData=DROP, **moved)
    else:
        body = api_call(responseElements=None, requestParameters=None, **moved)
    event = accepted(body)
    assert (event.kind, event.secret_arn, event.secret_name) == (kind, RDS_ARN, "rds!db-0123abcd-4567-89ef")


@pytest.mark.parametrize("name", sorted(API_CALL_EVENTS))
def test_every_api_call_event_name_is_accepted(name: str) -> None:
    """Each handled API call is accepted, and none of them counts as a rotation outcome."""
    event = accepted(api_call(eventName=name))
    assert (event.event_name, event.is_test, event.is_rotation_outcome) == (name, False, False)


@pytest.mark.parametrize(
    ("resources", "changes", "expected_label"),
    [
        pytest.param(None, {}, "blue", id="resources0-string-label"),
        pytest.param(None, {"labelUpdated": ["blue", "green"]}, "blue,green", id="list-label-joined"),
        pytest.param(None, {"labelUpdated": []}, None, id="empty-list-no-label"),
        pytest.param([], {"secretId": ARN}, "blue", id="detail.secretId"),
        pytest.param(["arn:aws:kms:us-east-2:123456789012:key/x"], {"SecretId": ARN}, "blue", id="detail.SecretId"),
    ],
)
def test_secret_label_updated(resources: list[Any] | None, changes: dict[str, Any], expected_label: str | None) -> None:
    """Secret Label Updated events carry the ARN, version and label; their id derives from those, not the envelope."""
    event = accepted(label(resources, **changes))
    assert (event.event_name, event.kind, event.secret_arn) == (LABEL_EVENT, "label", ARN)
    assert (event.version_id, event.label) == (LABEL_DETAIL["versionId"], expected_label)
    assert event.envelope_id == ENVELOPE_ID
    assert event.event_id.startswith("label-")
    assert event.rotation_id == event.event_id
    assert event.event_time == datetime(2022, 9, 13, 2, 17, 50, tzinfo=UTC)


def test_a_replayed_label_event_keeps_its_key() -> None:
    """An archive replay gives the event a new envelope id (and a replay-name): its id and item key stay the same."""
    original = accepted(label())
    replay = accepted(dumps(envelope(LABEL_DETAIL, LABEL, id=str(uuid.uuid4()), resources=[ARN], **REPLAYED)))
    assert replay.envelope_id != original.envelope_id
    assert (replay.event_id, replay.rotation_id) == (original.event_id, original.rotation_id)
    assert event_key(replay) == event_key(original)


@pytest.mark.parametrize(
    ("detail_changes", "envelope_changes"),
    [
        pytest.param({"versionId": "b1b2c3d4-e5f6-4789-8abc-def012345678"}, {}, id="other-version"),
        pytest.param({"labelUpdated": "green"}, {}, id="other-label"),
        pytest.param({}, {"time": "2022-09-13T02:17:51Z"}, id="other-time"),
        pytest.param({}, {"resources": [ARN.replace("a1b2c3", "z9y8x7")]}, id="other-secret"),
    ],
)
def test_different_label_moves_get_different_ids(
    detail_changes: dict[str, Any], envelope_changes: dict[str, Any]
) -> None:
    """Another secret, version, label or time is another label move: another id."""
    changed = dumps(envelope(edit(LABEL_DETAIL, **detail_changes), LABEL, **{"resources": [ARN], **envelope_changes}))
    assert accepted(changed).event_id != accepted(label()).event_id


def test_moto_style_envelope_without_account_region_time_or_id() -> None:
    """Without envelope account (as from moto), region, time or id, the detail supplies them."""
    body = dumps(envelope(AWS_SAMPLE_DETAIL, account=DROP, region=DROP, time=DROP, id=DROP))
    event = accepted(body)
    assert (event.account, event.region, event.envelope_id) == (ACCOUNT, REGION, None)
    assert event.event_time == datetime(2022, 9, 13, 2, 17, 48, tzinfo=UTC)


SECRET_IN_ANOTHER_PLACE = "arn:aws:secretsmanager:eu-west-1:444444444444:secret:MyDatabaseSecret-a1b2c3"


@pytest.mark.parametrize(
    ("envelope_changes", "detail_changes", "account", "region"),
    [
        pytest.param(
            {"account": "111111111111", "region": "us-west-1"}, {}, "111111111111", "us-west-1", id="envelope"
        ),
        pytest.param({"account": DROP, "region": DROP}, {}, "222222222222", "ap-south-1", id="detail"),
        pytest.param(
            {"account": DROP, "region": DROP},
            {"recipientAccountId": DROP},
            "333333333333",
            "ap-south-1",
            id="userIdentity",
        ),
        pytest.param(
            {"account": DROP, "region": DROP},
            {"recipientAccountId": DROP, "userIdentity": DROP, "awsRegion": DROP},
            "444444444444",
            "eu-west-1",
            id="secret-arn",
        ),
    ],
)
def test_account_and_region_fall_back_in_order(
    envelope_changes: dict[str, Any], detail_changes: dict[str, Any], account: str, region: str
) -> None:
    """Account: envelope, recipientAccountId, userIdentity, ARN; region: envelope, awsRegion, ARN."""
    detail = edit(
        AWS_SAMPLE_DETAIL,
        recipientAccountId="222222222222",
        userIdentity={"accountId": "333333333333"},
        awsRegion="ap-south-1",
        additionalEventData={"SecretId": SECRET_IN_ANOTHER_PLACE},
    )
    event = accepted(dumps(envelope(edit(detail, **detail_changes), **envelope_changes)))
    assert (event.account, event.region) == (account, region)


@pytest.mark.parametrize(
    ("detail_changes", "envelope_changes", "rotation_id", "event_id"),
    [
        pytest.param({}, {}, ROTATION_UUID, "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE", id="rotation-request-uuid"),
        pytest.param(
            {"requestID": f"Rotation-{ARN}-{ROTATION_UUID.upper()}"},
            {},
            ROTATION_UUID,
            "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE",
            id="uuid-lowercased",
        ),
        pytest.param({"requestID": "req-42"}, {}, "req-42", "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE", id="plain"),
        pytest.param(
            {"requestID": "Rotation-not-an-arn"},
            {},
            "Rotation-not-an-arn",
            "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE",
            id="odd",
        ),
        pytest.param({"requestID": DROP}, {}, "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE", None, id="eventID"),
        pytest.param({"requestID": ""}, {}, "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE", None, id="empty-eventID"),
        pytest.param({"requestID": DROP, "eventID": DROP}, {}, ENVELOPE_ID, ENVELOPE_ID, id="envelope-id"),
        pytest.param({"eventID": DROP}, {"id": DROP}, None, None, id="requestID-only-not-an-event"),
    ],
)
def test_rotation_id_fallbacks(
    detail_changes: dict[str, Any],
    envelope_changes: dict[str, Any],
    rotation_id: str | None,
    event_id: str | None,
) -> None:
    """rotation_id: requestID's uuid, else requestID, else eventID, else envelope id; event_id likewise."""
    result = parse_message(dumps(envelope(edit(AWS_SAMPLE_DETAIL, **detail_changes), **envelope_changes)))
    if rotation_id is None:
        assert isinstance(result, Rejection)
        assert result.reason is RejectReason.NOT_AN_EVENT
        return
    assert isinstance(result, RotationEvent)
    assert result.rotation_id == rotation_id
    assert result.event_id == (event_id or rotation_id)


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        pytest.param(ARN, "MyDatabaseSecret", id="plain"),
        pytest.param(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234abcd-5678-90ef-abcd-1234567890ab-AbC123",
            "rds!db-1234abcd-5678-90ef-abcd-1234567890ab",
            id="rds-managed",
        ),
        pytest.param(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/db-Xy9Z01",
            "prod/app/db",
            id="path",
        ),
        pytest.param(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:a_b+c=d.e@f-g-000000",
            "a_b+c=d.e@f-g",
            id="punctuation",
        ),
        pytest.param("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-abcdef", "x", id="aws-cn"),
        pytest.param("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x-abcdef", "x", id="gov"),
    ],
)
def test_secret_names_parsed_from_arn(arn: str, name: str) -> None:
    """Managed (rds!), path-style and punctuated names lose only AWS's 6-char suffix, in every partition."""
    event = accepted(service(additionalEventData={"SecretId": arn}, requestID=DROP))
    assert (event.secret_arn, event.secret_name) == (arn, name)
    assert parse_secret_arn(arn) == (arn.split(":")[3], "123456789012", name)


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param("MyDatabaseSecret", id="bare-name"),
        pytest.param("arn:aws:secretsmanager:us-east-2:123456789012:secret:prod/db", id="no-suffix"),
        pytest.param("arn:aws:lambda:us-east-2:123456789012:function:rotate-abcdef", id="other-service"),
        pytest.param(ARN + "\n", id="trailing-newline"),
        pytest.param(ARN.replace("123456789012", "12345678901"), id="short-account"),
        pytest.param(ARN.replace("arn:aws:", "arn:aws-xx:"), id="unknown-partition"),
        pytest.param(ARN.replace("us-east-2", "nowhere"), id="bad-region"),
        pytest.param("arn:aws:secretsmanager:us-east-2:123456789012:secret:" + "a" * 3000 + "-abcdef", id="too-long"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_secret_arn_rejects_non_secret_arns(arn: str) -> None:
    """Anything but a full secretsmanager secret ARN identifies no secret."""
    assert parse_secret_arn(arn) is None


@pytest.fixture
def far_local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with the process's local zone at UTC+14, so reading naive times as local time would show."""
    monkeypatch.setenv("TZ", "KIRI-14")  # POSIX form: needs no tzdata
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("2022-09-13T02:17:48Z", datetime(2022, 9, 13, 2, 17, 48, tzinfo=UTC), id="zulu"),
        pytest.param("2022-09-13T07:47:48+05:30", datetime(2022, 9, 13, 2, 17, 48, tzinfo=UTC), id="offset"),
        pytest.param("2022-09-13T02:17:48", datetime(2022, 9, 13, 2, 17, 48, tzinfo=UTC), id="naive-is-utc"),
        pytest.param("2022-09-13T02:17:48.250Z", datetime(2022, 9, 13, 2, 17, 48, 250000, tzinfo=UTC), id="fraction"),
        pytest.param("2022-09-12T21:17:48-05:00", datetime(2022, 9, 13, 2, 17, 48, tzinfo=UTC), id="negative"),
    ],
)
@pytest.mark.usefixtures("far_local_zone")
def test_event_time_is_utc_aware(raw: str, expected: datetime) -> None:
    """eventTime in any ISO-8601 form becomes an aware UTC datetime."""
    event_time = accepted(service(eventTime=raw)).event_time
    assert event_time == expected
    assert event_time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("message", "step"),
    [
        pytest.param("Error when executing lambda arn:x during createSecret step", "createSecret", id="create"),
        pytest.param("Error when executing lambda arn:x during setSecret step", "setSecret", id="set"),
        pytest.param("Error when executing lambda arn:x during testSecret step", "testSecret", id="test"),
        pytest.param("Error when executing lambda arn:x during finishSecret step", "finishSecret", id="finish"),
        pytest.param("Secrets Manager cannot invoke the specified Lambda function.", None, id="no-step"),
        pytest.param(DROP, None, id="no-message"),
    ],
)
def test_failed_step_from_error_message(message: Any, step: str | None) -> None:
    """The failing rotation step is read from errorMessage, when it names one."""
    assert accepted(service(errorMessage=message)).failed_step == step


def test_error_message_is_truncated() -> None:
    """A long errorMessage is kept to its first 1000 characters."""
    event = accepted(service(errorMessage="e" * 5000 + " during testSecret step"))
    assert (event.error_message, event.failed_step) == ("e" * 1000, "testSecret")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(service().encode(), id="bytes"),
        pytest.param(b"\xef\xbb\xbf" + service().encode(), id="bytes-bom"),
        pytest.param("\ufeff" + service(), id="str-bom"),
        pytest.param(service(errorMessage="Fehler: Größe during setSecret step").encode(), id="bytes-non-ascii"),
        pytest.param(service(errorMessage="Fehler: Größe during setSecret step"), id="str-non-ascii"),
    ],
)
def test_body_encodings(body: str | bytes) -> None:
    """Bodies arrive as str or UTF-8 bytes, with or without a BOM."""
    assert accepted(body).rotation_id == ROTATION_UUID


def test_body_of_exactly_max_bytes_is_parsed() -> None:
    """The size limit is inclusive: a body of exactly MAX_BODY_BYTES is parsed."""
    body = service()
    body += " " * (MAX_BODY_BYTES - len(body))
    assert accepted(body).event_name == "RotationFailed"
    assert rejected(body + " ").reason is RejectReason.TOO_LARGE


def test_size_is_measured_in_utf8_bytes() -> None:
    """A str body under the limit in characters but over it in UTF-8 bytes is too large."""
    body = service(errorMessage="é" * (MAX_BODY_BYTES // 2))
    assert len(body) < MAX_BODY_BYTES
    assert rejected(body).reason is RejectReason.TOO_LARGE


# ------------------------------------------------------------------------------------------ rejections

REJECTIONS = [
    pytest.param("not json", {}, RejectReason.NOT_JSON, id="not-json"),
    pytest.param(b"\xff\xfe{}", {}, RejectReason.NOT_JSON, id="invalid-utf8"),
    pytest.param("[1, 2]", {}, RejectReason.NOT_JSON, id="json-list"),
    pytest.param("null", {}, RejectReason.NOT_JSON, id="json-null"),
    pytest.param("[" * 100_000, {}, RejectReason.NOT_JSON, id="depth-bomb-list"),
    pytest.param('{"a":' * 100_000, {}, RejectReason.NOT_JSON, id="depth-bomb-object"),
    pytest.param("1" * 5000, {}, RejectReason.NOT_JSON, id="huge-int"),
    pytest.param(" " * (MAX_BODY_BYTES + 1), {}, RejectReason.TOO_LARGE, id="too-large-str"),
    pytest.param(b" " * (MAX_BODY_BYTES + 1), {}, RejectReason.TOO_LARGE, id="too-large-bytes"),
    pytest.param("{}", {}, RejectReason.NOT_AN_EVENT, id="empty-object"),
    pytest.param(
        dumps({"Type": "Notification", "Message": service()}),
        {},
        RejectReason.NOT_AN_EVENT,
        id="sns-envelope",
    ),
    pytest.param(dumps(envelope([AWS_SAMPLE_DETAIL])), {}, RejectReason.NOT_AN_EVENT, id="detail-list"),
    pytest.param(dumps(envelope(AWS_SAMPLE_DETAIL, source=7)), {}, RejectReason.NOT_AN_EVENT, id="source-int"),
    pytest.param(
        dumps(envelope(AWS_SAMPLE_DETAIL, **{"detail-type": DROP})),
        {},
        RejectReason.NOT_AN_EVENT,
        id="no-type",
    ),
    pytest.param(
        dumps(envelope(edit(AWS_SAMPLE_DETAIL, eventID=DROP, requestID=DROP), id=DROP)),
        {},
        RejectReason.NOT_AN_EVENT,
        id="no-ids",
    ),
    pytest.param(
        dumps(envelope(edit(AWS_SAMPLE_DETAIL, eventTime=DROP), time=DROP)),
        {},
        RejectReason.NOT_AN_EVENT,
        id="no-time",
    ),
    pytest.param(dumps(envelope(AWS_SAMPLE_DETAIL, source="aws.s3")), {}, RejectReason.WRONG_SOURCE, id="source"),
    pytest.param(service(eventSource="s3.amazonaws.com"), {}, RejectReason.WRONG_SOURCE, id="eventSource"),
    pytest.param(
        dumps(envelope(AWS_SAMPLE_DETAIL, "Scheduled Event")),
        {},
        RejectReason.UNKNOWN_EVENT,
        id="detail-type",
    ),
    pytest.param(service(eventName="DescribeSecret"), {}, RejectReason.UNKNOWN_EVENT, id="eventName"),
    pytest.param(service(eventName=DROP), {}, RejectReason.UNKNOWN_EVENT, id="no-eventName"),
    pytest.param(
        service(additionalEventData={"SecretId": "MyDatabaseSecret"}, requestID="r-1"),
        {},
        RejectReason.NO_SECRET,
        id="bare-name",
    ),
    pytest.param(service(additionalEventData=ARN, requestID="r-1"), {}, RejectReason.NO_SECRET, id="aed-string"),
    pytest.param(api_call(responseElements=None), {}, RejectReason.NO_SECRET, id="api-bare-secretId"),
    pytest.param(
        label([], labelUpdated="x", secretId="arn:aws:lambda:us-east-2:123456789012:function:f-abcdef"),
        {},
        RejectReason.NO_SECRET,
        id="label-lambda-arn",
    ),
    pytest.param(service(eventTime=1663035468), {}, RejectReason.BAD_FIELD, id="eventTime-number"),
    pytest.param(service(eventTime="yesterday"), {}, RejectReason.BAD_FIELD, id="eventTime-text"),
    pytest.param(service(eventTime="2022-13-45T02:17:48Z"), {}, RejectReason.BAD_FIELD, id="eventTime-range"),
    pytest.param(service(eventTime="0001-01-01T00:00:00+01:00"), {}, RejectReason.BAD_FIELD, id="eventTime-overflow"),
    pytest.param(service(eventName=7), {}, RejectReason.BAD_FIELD, id="eventName-number"),
    pytest.param(service(requestID=f"{CANARY}#1"), {}, RejectReason.BAD_FIELD, id="requestID-hash"),
    pytest.param(service(requestID="é"), {}, RejectReason.BAD_FIELD, id="requestID-non-ascii"),
    pytest.param(service(eventID="e" * 257), {}, RejectReason.BAD_FIELD, id="eventID-too-long"),
    pytest.param(dumps(envelope(AWS_SAMPLE_DETAIL, id="a#b")), {}, RejectReason.BAD_FIELD, id="envelope-id-hash"),
    pytest.param(dumps(envelope(AWS_SAMPLE_DETAIL, account="12345")), {}, RejectReason.BAD_FIELD, id="account"),
    pytest.param(dumps(envelope(AWS_SAMPLE_DETAIL, region="Mars")), {}, RejectReason.BAD_FIELD, id="region"),
    pytest.param(service(errorMessage=[CANARY]), {}, RejectReason.BAD_FIELD, id="errorMessage-list"),
    pytest.param(label(labelUpdated={"a": 1}), {}, RejectReason.BAD_FIELD, id="labelUpdated-object"),
    pytest.param(label(labelUpdated=["a", 1]), {}, RejectReason.BAD_FIELD, id="labelUpdated-mixed-list"),
    pytest.param(
        service(),
        {"allowed_accounts": frozenset({"999999999999"})},
        RejectReason.ACCOUNT_NOT_ALLOWED,
        id="acct",
    ),
    pytest.param(
        service(),
        {"allowed_regions": frozenset({"eu-west-1"})},
        RejectReason.REGION_NOT_ALLOWED,
        id="region-no",
    ),
]


@pytest.mark.parametrize(("body", "kwargs", "reason"), REJECTIONS)
def test_rejections(body: str | bytes, kwargs: dict[str, Any], reason: RejectReason) -> None:
    """Each bad input is rejected with its reason and a short detail that echoes no secret value."""
    rejection = rejected(body, **kwargs)
    assert rejection.reason is reason
    assert 0 < len(rejection.detail) <= 200
    assert CANARY not in rejection.detail


def test_every_reject_reason_is_exercised() -> None:
    """The rejection table covers the whole closed set of reasons."""
    assert {case.values[2] for case in REJECTIONS} == set(RejectReason)


def test_unknown_event_detail_names_event_but_not_garbage() -> None:
    """UNKNOWN_EVENT names a plausible event name but never echoes an arbitrary string."""
    assert "DescribeSecret" in rejected(service(eventName="DescribeSecret")).detail
    assert CANARY not in rejected(service(eventName=CANARY)).detail


ARN_IN_OTHER = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:MyDatabaseSecret-a1b2c3"


@pytest.mark.parametrize(
    ("arn", "accounts", "regions", "reason"),
    [
        pytest.param(ARN, frozenset(), frozenset(), None, id="no-allow-lists"),
        pytest.param(ARN, frozenset({ACCOUNT}), frozenset({REGION}), None, id="both-allowed"),
        pytest.param(ARN_IN_OTHER, frozenset({ACCOUNT}), frozenset(), RejectReason.ACCOUNT_NOT_ALLOWED, id="arn-acct"),
        pytest.param(ARN, frozenset({"210987654321"}), frozenset(), RejectReason.ACCOUNT_NOT_ALLOWED, id="event-acct"),
        pytest.param(ARN_IN_OTHER, frozenset(), frozenset({REGION}), RejectReason.REGION_NOT_ALLOWED, id="arn-region"),
        pytest.param(ARN, frozenset(), frozenset({"eu-west-1"}), RejectReason.REGION_NOT_ALLOWED, id="event-region"),
        pytest.param(
            ARN_IN_OTHER,
            frozenset({ACCOUNT, "210987654321"}),
            frozenset({REGION, "eu-west-1"}),
            None,
            id="both-lists-hold-both",
        ),
    ],
)
def test_allowed_accounts_and_regions(
    arn: str, accounts: frozenset[str], regions: frozenset[str], reason: RejectReason | None
) -> None:
    """Both the event's and the secret ARN's account and region must be on the allow lists, when set."""
    body = service(additionalEventData={"SecretId": arn}, requestID="r-1")
    result = parse_message(body, allowed_accounts=accounts, allowed_regions=regions)
    if reason is None:
        assert isinstance(result, RotationEvent)
        assert result.secret_arn == arn
    else:
        assert isinstance(result, Rejection)
        assert result.reason is reason


# ------------------------------------------------------------------------------------------ properties

FIELD_KEYS = [
    "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail", "eventName",
    "eventSource", "eventTime", "eventID", "requestID", "additionalEventData", "SecretId", "secretId",
    "responseElements", "requestParameters", "arn", "aRN", "errorMessage", "labelUpdated", "versionId",
]  # fmt: skip
FIELD_VALUES = [
    ARN, "aws.secretsmanager", "secretsmanager.amazonaws.com", SERVICE, API_CALL, LABEL, ACCOUNT, REGION,
    "RotationFailed", "PutSecretValue", "2022-09-13T02:17:48Z", f"Rotation-{ARN}-{ROTATION_UUID}", ECHO,
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(FIELD_VALUES)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=30,
)
BASES = [
    envelope(edit(AWS_SAMPLE_DETAIL, requestParameters={"secretString": CANARY})),
    envelope(API_DETAIL, API_CALL),
    envelope(edit(LABEL_DETAIL, requestParameters={"secretString": CANARY}), LABEL, resources=[ARN]),
]


def assert_well_formed(result: RotationEvent | Rejection) -> None:
    """A result is a value-free Rejection or a RotationEvent whose fields hold their promises."""
    if isinstance(result, Rejection):
        assert isinstance(result.reason, RejectReason)
        assert 0 < len(result.detail) <= 200
        assert CANARY not in result.detail
        assert ECHO not in result.detail
        return
    assert isinstance(result, RotationEvent)
    assert result.event_name in ROTATION_EVENTS | API_CALL_EVENTS | {LABEL_EVENT}
    assert result.kind in {"service", "api_call", "label"}
    parsed_arn = parse_secret_arn(result.secret_arn)
    assert parsed_arn is not None
    assert parsed_arn[2] == result.secret_name
    assert result.event_time.utcoffset() == timedelta(0)
    for key_part in (result.rotation_id, result.event_id):
        assert 0 < len(key_part) <= 256
        assert key_part.isascii()
        assert key_part.isprintable()
        assert "#" not in key_part
    assert CANARY not in repr(result)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside nested dicts and lists."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    found = []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def mutate(root: Any, path: tuple[Any, ...], new: Any) -> None:
    """Delete (new is DROP) or replace the value at `path`, if an earlier mutation left it reachable."""
    parent = root
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        if new is DROP:
            parent.pop(last, None)
        else:
            parent[last] = new
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        if new is DROP:
            del parent[last]
        else:
            parent[last] = new


@settings(deadline=None)
@given(st.sampled_from(BASES), st.data())
def test_mutated_events_never_raise_nor_echo_secrets(base: dict[str, Any], data: st.DataObject) -> None:
    """Valid events with random keys deleted or retyped give a well-formed result, never echoing secrets."""
    event = copy.deepcopy(base)
    for path in data.draw(st.lists(st.sampled_from(paths(base)), max_size=5)):
        mutate(event, path, data.draw(st.just(DROP) | JSON_VALUES))
    assert_well_formed(parse_message(dumps(event)))


@settings(deadline=None)
@given(JSON_VALUES)
def test_any_json_value_never_raises(value: Any) -> None:
    """Any JSON value, as a body, gives a well-formed result."""
    assert_well_formed(parse_message(dumps(value)))


@settings(deadline=None)
@given(st.binary() | st.text())
def test_any_body_never_raises(body: str | bytes) -> None:
    """Arbitrary bytes or text give a well-formed result."""
    assert_well_formed(parse_message(body))


def test_unmutated_property_bases_are_accepted() -> None:
    """The property tests start from events that parse, so their mutations probe real code paths."""
    for base in BASES:
        assert isinstance(parse_message(dumps(base)), RotationEvent)
