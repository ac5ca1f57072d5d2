"""The DLQ feature's pure parts: message reading, filters, --since, ages, the progress bar, error advice."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.aws import explain
from daemon.cli.dlq import ProgressBar, format_age, parse_since
from daemon.dlq.reader import read_message
from daemon.dlq.replay import ReplayCounts, ReplayFilter
from daemon.emit import build_event
from daemon.errors import PermanentAwsError
from tests.support import REGION
from tests.support.dlq import rejected_attributes

_T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _dlq_message(body: str, attributes: dict[str, Any], sent_at: datetime = _T0) -> Any:
    return read_message(
        {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": "rh",
            "Body": body,
            "Attributes": {"SentTimestamp": str(int(sent_at.timestamp() * 1000)), "ApproximateReceiveCount": "4"},
            "MessageAttributes": attributes,
        }
    )


_FAILED_A = json.dumps(
    build_event("RotationFailed", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:app/a-abcdef")
)
_EVENTBRIDGE = {"ERROR_CODE": {"DataType": "String", "StringValue": "SQS_PERMISSION_ISSUE"}}


@pytest.mark.parametrize(
    ("filters", "body", "attributes", "selected"),
    [
        (ReplayFilter(), "not json", {}, True),
        (ReplayFilter(secrets=("app/a",)), _FAILED_A, {}, True),
        (ReplayFilter(secrets=("app/*",)), _FAILED_A, {}, True),
        (ReplayFilter(secrets=("app/b",)), _FAILED_A, {}, False),
        (ReplayFilter(secrets=("arn:aws:secretsmanager:*:secret:app/a-*",)), _FAILED_A, {}, True),
        (ReplayFilter(secrets=("app/a",)), "not json", {}, False),
        (ReplayFilter(events=("RotationFailed", "RotationSucceeded")), _FAILED_A, {}, True),
        (ReplayFilter(events=("RotationSucceeded",)), _FAILED_A, {}, False),
        (ReplayFilter(reasons=("max_receives",)), _FAILED_A, {}, True),
        (ReplayFilter(reasons=("max_receives",)), _FAILED_A, rejected_attributes("not_json"), False),
        (ReplayFilter(reasons=("eventbridge_undelivered",)), _FAILED_A, _EVENTBRIDGE, True),
        (ReplayFilter(since=_T0), _FAILED_A, {}, True),
        (ReplayFilter(since=_T0 + timedelta(seconds=1)), _FAILED_A, {}, False),
        (ReplayFilter(secrets=("app/a",), reasons=("bad_field",)), _FAILED_A, rejected_attributes("bad_field"), True),
        (ReplayFilter(secrets=("app/a",), reasons=("bad_field",)), _FAILED_A, rejected_attributes("not_json"), False),
    ],
)
def test_filters_select_exactly_the_right_messages(
    filters: ReplayFilter, body: str, attributes: dict[str, Any], selected: bool
) -> None:
    """Every given criterion must hold; any of a repeated one; wildcards on secret names and ARNs."""
    assert filters.matches(_dlq_message(body, attributes)) is selected


def test_a_message_the_body_of_which_is_half_an_event_is_still_identified() -> None:
    """A rejected but event-shaped body still shows its event name and secret; the source receive count wins."""
    envelope = build_event("RotationFailed", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:half-abcdef")
    envelope["detail"]["eventTime"] = "yesterday"
    message = _dlq_message(json.dumps(envelope), rejected_attributes("bad_field", receive_count=2))
    assert (message.event_name, message.secret_name, message.reason) == ("RotationFailed", "half", "bad_field")
    assert (message.receive_count, message.dlq_receive_count) == (2, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", _T0 - timedelta(minutes=30)),
        ("6h", _T0 - timedelta(hours=6)),
        ("2d", _T0 - timedelta(days=2)),
        ("90s", _T0 - timedelta(seconds=90)),
        ("2026-02-28T10:00:00Z", datetime(2026, 2, 28, 10, tzinfo=UTC)),
        ("2026-02-28T10:00:00", datetime(2026, 2, 28, 10, tzinfo=UTC)),
        ("2026-02-28T12:00:00+02:00", datetime(2026, 2, 28, 10, tzinfo=UTC)),
    ],
)
def test_since_takes_a_time_or_an_age(text: str, expected: datetime) -> None:
    """--since accepts ISO-8601 (naive is UTC) or an age before now."""
    assert parse_since(text, _T0) == expected


@pytest.mark.parametrize("text", ["yesterday", "5x", "", "-3h"])
def test_since_rejects_anything_else(text: str) -> None:
    """Anything else is a usage error, not a silent 'everything'."""
    with pytest.raises(ValueError, match="isoformat"):
        parse_since(text, _T0)


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, "-"), (0.4, "0s"), (59, "59s"), (61, "1m01s"), (3725, "1h02m"), (90000, "1d01h")]
)
def test_ages_read_at_a_glance(seconds: float | None, shown: str) -> None:
    """Ages print compactly."""
    assert format_age(seconds) == shown


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal() -> None:
    """On a TTY the bar redraws in place and ends with a newline; elsewhere it writes nothing."""
    counts = ReplayCounts(matched=3, replayed=3, skipped=1)
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = ProgressBar(stream, total=8)
        bar.update(counts)
        bar.close()
    assert terminal.getvalue().startswith("\r[")
    assert "4/8 examined" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")
    assert pipe.getvalue() == ""


@pytest.mark.parametrize(
    ("service", "operation", "code", "expected"),
    [
        ("sqs", "send_message_batch", "AccessDenied", "grant sqs:SendMessage"),
        ("sqs", "receive_message", "AccessDenied", "grant sqs:ReceiveMessage"),
        ("sqs", "delete_message_batch", "AccessDenied", "grant sqs:DeleteMessage"),
        ("dynamodb", "put_item", "AccessDeniedException", "grant dynamodb:PutItem"),
        ("sqs", "get_queue_attributes", "AWS.SimpleQueueService.NonExistentQueue", "not found: check X"),
    ],
)
def test_aws_errors_are_explained_with_the_fix(service: str, operation: str, code: str, expected: str) -> None:
    """Stand-in: the emulator does not enforce IAM, so denials are built by hand; each names the IAM action."""
    error = PermanentAwsError(service, operation, code, "denied")
    assert expected in explain(error, "the thing", "check X")
