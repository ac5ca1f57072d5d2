"""A named corpus of malformed (and awkward but valid) SQS message bodies, each with the verdict the daemon owes it.

`build_corpus(tag)` returns `Case`s: `reason` is the `RejectReason` the daemon must dead-letter the message with,
or None for a valid edge case that must be audited exactly once under `secret_arn`. `tag` makes every secret
name unique, so one run's audit items are told apart from another's. Cases with `sqs=False` cannot travel
through SQS (an empty body, characters SQS refuses, more than 1 MiB) and are for the pure parser tests only.

The verdicts follow README "How events are read" and AWS-FACTS §1; the daemon runs with `ALLOWED_ACCOUNTS` and
`ALLOWED_REGIONS` set, so the allow-list cases have something to trip over.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.emit import build_event
from daemon.events import MAX_BODY_BYTES, RejectReason

ACCOUNT, OTHER_ACCOUNT, REGION = "123456789012", "999999999999", "us-east-1"
ALLOWED_ACCOUNTS = frozenset({ACCOUNT})
ALLOWED_REGIONS = frozenset({REGION, "us-east-2", "cn-north-1"})
CASE_ATTRIBUTE = "test_case"  # the SQS message attribute carrying the case id; the consumer keeps it on the DLQ copy
# SQS accepts only these characters in a body (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF).
_SQS_CHARS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
DROP = object()  # marks a key to delete in `_edit`
NOT_JSON, NOT_AN_EVENT, WRONG_SOURCE = RejectReason.NOT_JSON, RejectReason.NOT_AN_EVENT, RejectReason.WRONG_SOURCE
UNKNOWN, NO_SECRET, BAD = RejectReason.UNKNOWN_EVENT, RejectReason.NO_SECRET, RejectReason.BAD_FIELD
ACCOUNT_NO, REGION_NO = RejectReason.ACCOUNT_NOT_ALLOWED, RejectReason.REGION_NOT_ALLOWED


@dataclass(frozen=True, slots=True)
class Case:
    """One kind of message: its body and the verdict it must get."""

    case_id: str
    body: str
    reason: RejectReason | None  # None: valid, audited once
    why: str
    secret_arn: str = ""  # valid cases: the secret the audit item belongs to
    sqs: bool = True  # False: SQS cannot carry this body

    @property
    def valid(self) -> bool:
        return self.reason is None


def sqs_can_carry(body: str) -> bool:
    """True when SQS accepts `body`: 1 character to 1 MiB of UTF-8, from SQS's allowed character set."""
    return 0 < len(body.encode("utf-8", "surrogatepass")) <= MAX_BODY_BYTES and bool(_SQS_CHARS.fullmatch(body))


def _edit(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy with keys changed ("detail.eventName" reaches into `detail`; `detail__type` is "detail-type")."""
    result = copy.deepcopy(event)
    for dotted, value in changes.items():
        *parents, last = dotted.replace("__", "-").split(".")
        target = result
        for key in parents:
            target = target.setdefault(key, {})
        if value is DROP:
            target.pop(last, None)
        else:
            target[last] = value
    return result


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _detail(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`_edit` inside `detail`."""
    return _edit(event, **{f"detail.{key}": value for key, value in changes.items()})


def _extra(event: dict[str, Any], raw: str, key: str = "x") -> str:
    """The event's JSON with `"<key>": <raw>` appended to the envelope as text (a second `key` if it has one)."""
    return _dumps(event)[:-1] + f', "{key}": {raw}}}'


Row = tuple[str, str, "str | dict[str, Any]"]  # case id, why, body
Edit = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class _Builder:
    """Collects cases; every secret is `malformed/<tag>/<case id>` so its audit items can be found again."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.cases: list[Case] = []

    def arn(self, case_id: str, *, partition: str = "aws", region: str = REGION, account: str = ACCOUNT) -> str:
        return f"arn:{partition}:secretsmanager:{region}:{account}:secret:malformed/{self.tag}/{case_id}-AbC123"

    def event(self, case_id: str, name: str = "RotationSucceeded", **changes: Any) -> dict[str, Any]:
        """A real-shaped event (daemon.emit) for this case's secret, with changes."""
        return _edit(build_event(name, self.arn(case_id), step="setSecret" if "Failed" in name else None), **changes)

    def bad(self, reason: RejectReason, rows: list[Row], *, sqs: bool = True) -> None:
        for case_id, why, body in rows:
            text = body if isinstance(body, str) else _dumps(body)
            self.cases.append(Case(case_id, text, reason, why, sqs=sqs))

    def good(self, rows: list[Row], arn: str = "") -> None:
        for case_id, why, body in rows:
            text = body if isinstance(body, str) else _dumps(body)
            self.cases.append(Case(case_id, text, None, why, secret_arn=arn or self.arn(case_id)))


def build_corpus(tag: str) -> list[Case]:
    """Every case, bad and valid; secret names carry `tag`."""
    b = _Builder(tag)
    for add in (_not_json, _not_events, _wrong_source, _unknown, _allow_lists, _no_secret, _bad_fields, _valid):
        add(b)
    return b.cases


def _not_json(b: _Builder) -> None:
    event = b.event("not-json")
    body = _dumps(event)
    b.bad(
        NOT_JSON,
        [
            ("not-json-text", "plain text", "hello, rotaudit"),
            ("whitespace-only", "only whitespace", "  \n\t\r\n "),
            ("bom-only", "a UTF-8 byte-order mark and nothing else", "\ufeff"),
            ("json-null", "the JSON null", "null"),
            ("json-number", "a JSON number", "42"),
            ("json-string", "a JSON string", '"RotationFailed"'),
            ("json-true", "a JSON boolean", "true"),
            ("json-array", "an array holding a valid event", f"[{body}]"),
            ("double-encoded", "the event as a JSON string", json.dumps(body)),
            ("truncated-half", "cut in the middle", body[: len(body) // 2]),
            ("truncated-last-brace", "missing its closing brace", body[:-1]),
            ("unterminated-string", "a string never closed", '{"source": "aws.secretsmanager'),
            ("trailing-garbage", "a valid event, then text", body + " trailing"),
            ("concatenated-events", "two events back to back", body + body),
            ("js-comment", "a // comment before the event", "// rotation\n" + body),
            ("python-repr", "a Python dict repr (quotes, None, True)", repr(event)),
            ("xml", "XML", "<Event><source>aws.secretsmanager</source></Event>"),
            ("base64-event", "the event base64-encoded", base64.b64encode(body.encode()).decode()),
            ("nan-literal", "NaN alone", "NaN"),
            ("nan-in-field", "NaN is not JSON (RFC 8259), even in an ignored field", _extra(event, "NaN")),
            ("infinity-in-field", "-Infinity is not JSON either", _extra(event, "-Infinity")),
            ("nested-100k", "100,000 nested arrays", "[" * 100_000),
            ("nested-5000-in-event", "a valid event with a 5,000-deep field", _extra(event, _nested(5000))),
            ("huge-int-in-event", "a 5,000-digit integer: over Python's int limit", _extra(event, "9" * 5000)),
            ("junk-255kib", "255 KiB of junk", "x" * (255 * 1024)),
            ("junk-1mib", "just under 1 MiB of junk", "y" * (MAX_BODY_BYTES - 4096)),
        ],
    )
    b.bad(
        NOT_JSON,
        [("empty-body", "empty", ""), ("raw-nul-in-string", "a raw control character in a string", '{"a": "\x00"}')],
        sqs=False,
    )
    b.bad(
        RejectReason.TOO_LARGE,
        [
            ("over-1mib-ascii", "1 MiB + 1 byte", " " * (MAX_BODY_BYTES + 1)),
            ("over-1mib-utf8", "under 1 Mi characters, over 1 MiB of UTF-8", "é" * 600_000),
        ],
        sqs=False,  # SQS refuses bodies over 1 MiB, so TOO_LARGE never comes through SQS itself
    )


def _not_events(b: _Builder) -> None:
    event = b.event("not-event")
    sns = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:rotations",
        "Message": _dumps(event),
        "Timestamp": "2026-11-22T05:00:00.000Z",
    }
    b.bad(
        NOT_AN_EVENT,
        [
            ("empty-object", "{}", "{}"),
            ("sns-envelope", "EventBridge -> SNS -> SQS without raw delivery: rotaudit reads raw only", sns),
            ("input-transformer", "wrapped by an input transformer", {"event": event}),
            ("cloudtrail-record", "a bare CloudTrail record, no envelope", event["detail"]),
            ("s3-notification", "an S3 event notification", {"Records": [{"eventSource": "aws:s3"}]}),
            ("detail-string", "detail double-encoded", _edit(event, detail=_dumps(event["detail"]))),
            ("detail-null", "detail null", _edit(event, detail=None)),
            ("detail-list", "detail a list", _edit(event, detail=[event["detail"]])),
            ("source-missing", "no source", _edit(event, source=DROP)),
            ("source-number", "source a number", _edit(event, source=7)),
            ("detail-type-missing", "no detail-type", _edit(event, detail__type=DROP)),
            ("detail-type-list", "detail-type a list", _edit(event, detail__type=[event["detail-type"]])),
            ("no-ids", "no eventID, requestID or id", _detail(_edit(event, id=DROP), eventID=DROP, requestID=DROP)),
            ("no-time", "no eventTime or time", _detail(_edit(event, time=DROP), eventTime=DROP)),
            ("duplicate-detail-key", "detail twice; the last (a number) wins", _extra(event, "0", "detail")),
        ],
    )


def _wrong_source(b: _Builder) -> None:
    event = b.event("source")
    b.bad(
        WRONG_SOURCE,
        [
            ("source-s3", "source aws.s3", _edit(event, source="aws.s3")),
            ("source-case", "source in other case", _edit(event, source="AWS.SecretsManager")),
            ("source-zero-width", "a zero-width space in source", _edit(event, source="aws.secretsmanager\u200b")),
            ("source-custom-spoof", "a PutEvents custom source", _edit(event, source="custom.secretsmanager")),
            ("event-source-kms", "detail.eventSource kms", _detail(event, eventSource="kms.amazonaws.com")),
            ("event-source-space", "a trailing space", _detail(event, eventSource="secretsmanager.amazonaws.com ")),
            ("event-source-number", "detail.eventSource a number", _detail(event, eventSource=7)),
            ("duplicate-source-key", "source twice; the last wins", _extra(event, '"aws.s3"', "source")),
        ],
    )


def _unknown(b: _Builder) -> None:
    event = b.event("unknown")
    b.bad(
        UNKNOWN,
        [
            ("name-describe", "DescribeSecret", _detail(event, eventName="DescribeSecret")),
            ("name-get-value", "GetSecretValue", _detail(event, eventName="GetSecretValue")),
            ("name-lowercase", "rotationsucceeded", _detail(event, eventName="rotationsucceeded")),
            ("name-homoglyph", "a Cyrillic letter in the name", _detail(event, eventName="Rotation\u0405ucceeded")),
            ("name-nul", "a NUL escape after the name", _detail(event, eventName="RotationSucceeded\u0000")),
            ("name-missing", "no eventName", _detail(event, eventName=DROP)),
            ("name-empty", "eventName empty", _detail(event, eventName="")),
            ("detail-type-scheduled", "a Scheduled Event", _edit(event, detail__type="Scheduled Event")),
            ("detail-type-case", "in lower case", _edit(event, detail__type="aws service event via cloudtrail")),
        ],
    )


def _allow_lists(b: _Builder) -> None:
    forged = build_event("RotationSucceeded", b.arn("arn-acct", account=OTHER_ACCOUNT), account=ACCOUNT)
    recipient = _detail(_edit(b.event("recipient"), account=DROP), recipientAccountId=OTHER_ACCOUNT)
    b.bad(
        ACCOUNT_NO,
        [
            ("account-other", "envelope account not allowed", b.event("acct", account=OTHER_ACCOUNT)),
            ("arn-account-other", "the secret's ARN is in another account", forged),
            ("recipient-account-other", "no envelope account; recipientAccountId not allowed", recipient),
        ],
    )
    elsewhere = build_event("RotationSucceeded", b.arn("arn-region", region="eu-west-3"), region=REGION)
    b.bad(
        REGION_NO,
        [
            ("region-other", "envelope region not allowed", b.event("region", region="eu-central-1")),
            ("arn-region-other", "the secret's ARN is in another region", elsewhere),
        ],
    )


def _no_secret(b: _Builder) -> None:
    # requestID without the ARN, so only the field under test can identify the secret.
    service = _detail(b.event("no-secret"), requestID=str(uuid.uuid4()))
    api = _detail(b.event("no-secret-api", "RotateSecret"), requestID=str(uuid.uuid4()))
    label = b.event("no-secret-label", "SecretLabelUpdated")
    arn = b.arn("x")

    def secret_id(value: Any) -> dict[str, Any]:
        return _detail(service, additionalEventData={"SecretId": value})

    def answer(response: Any, request: Any) -> dict[str, Any]:
        return _detail(api, responseElements=response, requestParameters=request)

    b.bad(
        NO_SECRET,
        [
            ("secret-id-name", "SecretId a bare name", secret_id("MyDatabaseSecret")),
            ("secret-id-missing", "no additionalEventData", _detail(service, additionalEventData=DROP)),
            ("secret-id-number", "SecretId a number", secret_id(12345)),
            ("secret-id-object", "SecretId an object", secret_id({"arn": arn})),
            ("arn-wrong-service", "a Lambda ARN", secret_id(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f-AbC123")),
            ("arn-unicode-name", "a non-ASCII secret name", secret_id(b.arn("sécret"))),
            ("arn-trailing-space", "an ARN with a space after it", secret_id(arn + " ")),
            ("arn-name-too-long", "a 520-character name", secret_id(b.arn("n" * 520))),
            ("arn-no-suffix", "no 6-character suffix", secret_id(arn.rpartition("-")[0])),
            ("api-arn-garbage", "arn garbage, secretId a name", answer({"arn": "not-an-arn"}, {"secretId": "name"})),
            ("api-arn-null-aRN-number", "arn null, aRN a number", answer({"arn": None, "aRN": 7}, None)),
            ("api-response-list", "responseElements a list", answer([arn], None)),
            ("label-resources-empty", "a label event with no resources", _edit(label, resources=[])),
            ("label-resources-string", "resources a string", _edit(label, resources=arn)),
            ("label-resources-object", "resources holds an object", _edit(label, resources=[{"arn": arn}])),
        ],
    )


def _bad_fields(b: _Builder) -> None:
    event = b.event("bad-field")
    label = b.event("bad-label", "SecretLabelUpdated")
    api_version = _edit(b.event("bad-api", "PutSecretValue"), **{"detail.responseElements.versionId": 7})
    no_account = _edit(event, account=DROP)
    identity = _detail(no_account, recipientAccountId=DROP, userIdentity={"accountId": 7})
    lone = json.dumps  # escapes the surrogate: the body itself is valid UTF-8
    b.bad(
        BAD,
        [
            ("time-number", "eventTime a number", _detail(event, eventTime=1663035468)),
            ("time-text", "eventTime text", _detail(event, eventTime="yesterday")),
            ("time-month-13", "eventTime in month 13", _detail(event, eventTime="2022-13-01T02:17:48Z")),
            ("time-leap-second", "eventTime on a leap second", _detail(event, eventTime="2022-09-13T23:59:60Z")),
            ("time-fullwidth", "fullwidth digits", _detail(event, eventTime="\uff12\uff10\uff12\uff12-09-13T02:17Z")),
            ("time-overflow", "before year 1 in UTC", _detail(event, eventTime="0001-01-01T00:00:00+01:00")),
            ("name-number", "eventName a number", _detail(event, eventName=7)),
            ("event-id-long", "eventID of 257 characters", _detail(event, eventID="e" * 257)),
            ("event-id-non-ascii", "eventID not ASCII", _detail(event, eventID="événement")),
            ("event-id-list", "eventID a list", _detail(event, eventID=["a"])),
            ("request-id-hash", "requestID with '#'", _detail(event, requestID="r#1")),
            ("request-id-object", "requestID an object", _detail(event, requestID={"a": 1})),
            ("error-list", "errorMessage a list", _detail(event, errorMessage=["during setSecret step"])),
            ("error-object", "errorMessage an object", _detail(event, errorMessage={"step": "setSecret"})),
            ("account-number", "account a number", _edit(event, account=123456789012)),
            ("account-short", "account of 5 digits", _edit(event, account="12345")),
            ("account-arabic-digits", "account in Arabic-Indic digits", _edit(event, account="١٢٣٤٥٦٧٨٩٠١٢")),
            ("region-mars", "region Mars", _edit(event, region="Mars")),
            ("envelope-id-hash", "id with '#'", _edit(event, id="a#b")),
            ("envelope-id-number", "id a number", _edit(event, id=42)),
            ("recipient-number", "recipientAccountId a number", _detail(no_account, recipientAccountId=1)),
            ("aws-region-number", "awsRegion a number", _detail(_edit(event, region=DROP), awsRegion=1)),
            ("identity-account-number", "only userIdentity.accountId, a number", identity),
            ("label-object", "labelUpdated an object", _detail(label, labelUpdated={"a": 1})),
            ("label-mixed-list", "labelUpdated a mixed list", _detail(label, labelUpdated=["a", 1])),
            ("label-too-long", "labelUpdated of 3,000 characters", _detail(label, labelUpdated="L" * 3000)),
            ("label-version-hash", "versionId with '#'", _detail(label, versionId="v#1")),
            # JSON can escape a lone surrogate; UTF-8 cannot hold one, so no DynamoDB item or SNS message can either.
            ("error-lone-surrogate", "a lone surrogate in errorMessage", lone(_detail(event, errorMessage="\ud800"))),
            ("label-lone-surrogate", "a lone surrogate in labelUpdated", lone(_detail(label, labelUpdated="\udfff"))),
            ("api-version-number", "responseElements.versionId a number", api_version),
        ],
    )


def _valid(b: _Builder) -> None:
    def api(response: Any, where: str = "name") -> Edit:
        return lambda e: _detail(e, responseElements=response, requestParameters={"secretId": where})

    def error(message: str, ascii_only: bool = False) -> Edit:
        return lambda e: (json.dumps if ascii_only else _dumps)(_detail(e, errorMessage=message))

    def duplicated(e: dict[str, Any]) -> str:
        once = '"eventName": "DescribeSecret"'
        return _dumps(_detail(e, eventName="DescribeSecret")).replace(once, f'{once}, "eventName": "RotationStarted"')

    upper_uuid = f"Rotation-{b.arn('valid-uuid-upper')}-{str(uuid.uuid4()).upper()}"
    label, failed, ok = "SecretLabelUpdated", "RotationFailed", "RotationSucceeded"
    rows: list[tuple[str, str, str, Edit | None]] = [
        ("valid-succeeded", ok, "a plain RotationSucceeded", None),
        ("valid-failed", failed, "a RotationFailed in setSecret", None),
        ("valid-test-rotation", "TestRotationFailed", "TestRotationFailed", None),
        ("valid-api-arn", "RotateSecret", "RotateSecret with responseElements.arn", None),
        ("valid-api-aRN", "PutSecretValue", "the pre-2024 aRN spelling", api({"aRN": b.arn("valid-api-aRN")})),
        ("valid-api-secret-id", "CancelRotateSecret", "a full-ARN secretId", api(None, b.arn("valid-api-secret-id"))),
        ("valid-api-garbage-arn", "UpdateSecretVersionStage", "arn garbage; a full-ARN secretId",
         api({"arn": "garbage"}, b.arn("valid-api-garbage-arn"))),
        ("valid-label", label, "a Secret Label Updated", None),
        ("valid-label-list", label, "labelUpdated a list", lambda e: _detail(e, labelUpdated=["AWSCURRENT", "X"])),
        ("valid-label-skip", label, "resources [7, ARN]", lambda e: _edit(e, resources=[7, *e["resources"]])),
        ("valid-label-empty-detail", label, "a label event whose detail is {}", lambda e: _edit(e, detail={})),
        ("valid-request-id-arn", ok, "SecretId garbage; the ARN in requestID",
         lambda e: _detail(e, additionalEventData={"SecretId": 1})),
        ("valid-uuid-upper", ok, "an upper-case rotation uuid", lambda e: _detail(e, requestID=upper_uuid)),
        ("valid-no-event-source", ok, "no detail.eventSource", lambda e: _detail(e, eventSource=DROP)),
        ("valid-moto-style", ok, "no account, region, time or id in the envelope",
         lambda e: _edit(e, account=DROP, region=DROP, time=DROP, id=DROP)),
        ("valid-bom", ok, "a byte-order mark first", lambda e: "\ufeff" + _dumps(e)),
        ("valid-spaces", ok, "whitespace around", lambda e: "\n\t " + _dumps(e) + "\r\n"),
        ("valid-pretty-crlf", ok, "pretty-printed with CRLF", lambda e: json.dumps(e, indent=2).replace("\n", "\r\n")),
        ("valid-unicode-raw", failed, "raw non-ASCII text", error("Größe 密码 🙂 during testSecret step")),
        ("valid-nul-escape", failed, "a NUL, escaped", error("nul \u0000 during setSecret step", True)),
        ("valid-long-error", failed, "a 5,000-character errorMessage", error("E" * 5000 + " during finishSecret step")),
        ("valid-huge-float", ok, "1e400 (read as infinity) in an ignored field", lambda e: _extra(e, "1e400")),
        ("valid-nested-400", ok, "a 400-deep ignored field", lambda e: _extra(e, _nested(400))),
        ("valid-255kib", ok, "255 KiB, padded in an ignored field", lambda e: _edit(e, pad="p" * (255 * 1024))),
        ("valid-duplicate-key", "RotationStarted", "eventName twice: the last wins", duplicated),
        ("valid-extra-fields", ok, "unknown fields and nested garbage",
         lambda e: _edit(e, extra={"nested": [{"garbage": None}, 1.5, True]}, **{"detail.extra": {"a": [[], {}]}})),
        ("valid-time-offset", ok, "eventTime with an offset",
         lambda e: _detail(e, eventTime="2026-01-02T03:04:05+05:30")),
        ("valid-time-nanos", ok, "nanoseconds", lambda e: _detail(e, eventTime="2026-01-02T03:04:05.1234567Z")),
    ]  # fmt: skip
    b.good([(case_id, why, (edit or _dumps)(b.event(case_id, name))) for case_id, name, why, edit in rows])
    cn_arn = b.arn("valid-aws-cn", partition="aws-cn", region="cn-north-1")
    b.good([("valid-aws-cn", "the aws-cn partition", build_event("RotationStarted", cn_arn))], cn_arn)
