"""Malformed input: every corpus case gets its verdict from the pure parser and from the running daemon.

The pure tests (the corpus table and hypothesis properties over mutated real events) need no emulator. The
end-to-end test sends the whole corpus, interleaved with valid events and their duplicates, to a fresh queue and
runs `rotaudit run` over it.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.emit import EVENT_NAMES, build_event
from daemon.events import (
    API_CALL_EVENTS,
    EVENT_SOURCE,
    LABEL_EVENT,
    ROTATION_EVENTS,
    SOURCE,
    Rejection,
    RejectReason,
    RotationEvent,
    parse_message,
    parse_secret_arn,
)
from tests.support import daemon_env, wait_until
from tests.support.daemon_process import DaemonProcess, queue_depth, receive_all, scan_table, send
from tests.support.malformed_corpus import (
    ALLOWED_ACCOUNTS,
    ALLOWED_REGIONS,
    CASE_ATTRIBUTE,
    REGION,
    Case,
    build_corpus,
    sqs_can_carry,
)

CORPUS = build_corpus("unit")
ALLOW = {"allowed_accounts": ALLOWED_ACCOUNTS, "allowed_regions": ALLOWED_REGIONS}
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:prop/db-AbC123"


def parse(body: str) -> RotationEvent | Rejection:
    return parse_message(body, **ALLOW)


def reason_of(result: RotationEvent | Rejection) -> RejectReason | None:
    return result.reason if isinstance(result, Rejection) else None


def assert_well_formed(result: RotationEvent | Rejection) -> None:
    """A reasoned, short, value-free rejection, or an event whose fields keep their promises."""
    if isinstance(result, Rejection):
        assert isinstance(result.reason, RejectReason)
        assert 0 < len(result.detail) <= 200
        return
    assert isinstance(result, RotationEvent), result
    assert result.event_name in ROTATION_EVENTS | API_CALL_EVENTS | {LABEL_EVENT}
    parsed = parse_secret_arn(result.secret_arn)
    assert parsed is not None
    assert parsed[2] == result.secret_name
    assert result.event_time.utcoffset() == timedelta(0)
    for key_part in (result.rotation_id, result.event_id):
        assert 0 < len(key_part) <= 256
        assert key_part.isascii()
        assert key_part.isprintable()
        assert "#" not in key_part


# ------------------------------------------------------------------------------------------------ the corpus


def test_corpus_holds_at_least_50_kinds_of_bad_message() -> None:
    """The corpus names at least 50 kinds of bad message, covers every reject reason, and has valid edge cases."""
    ids = [case.case_id for case in CORPUS]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    bad = [case for case in CORPUS if not case.valid]
    assert len(bad) >= 50
    assert {case.reason for case in bad} == set(RejectReason)
    assert sum(case.valid for case in CORPUS) >= 20


def test_corpus_marks_exactly_the_bodies_sqs_cannot_carry() -> None:
    """`sqs=False` marks exactly the bodies SQS refuses, so the end-to-end test sends everything SQS can."""
    assert [case.case_id for case in CORPUS if case.sqs != sqs_can_carry(case.body)] == []


@pytest.mark.parametrize("case", CORPUS, ids=[case.case_id for case in CORPUS])
def test_parser_gives_each_case_its_verdict(case: Case) -> None:
    """Each bad case is rejected with its reason; each valid edge case is an event for its secret."""
    result = parse(case.body)
    assert_well_formed(result)
    if case.valid:
        assert isinstance(result, RotationEvent), f"{case.why}: rejected {result}"
        assert result.secret_arn == case.secret_arn
    else:
        assert isinstance(result, Rejection), f"{case.why}: accepted, should be {case.reason}"
        assert result.reason is case.reason, f"{case.why}: {result.detail}"


# ------------------------------------------------------------------------------------------------ properties


def _base(name: str) -> dict[str, Any]:
    """A real-shaped event (daemon.emit) with fixed ids, so hypothesis replays the same inputs."""
    event = build_event(name, ARN, rotation_id=str(uuid.UUID(int=1)), event_id=str(uuid.UUID(int=2)), when=WHEN)
    event["id"] = str(uuid.UUID(int=3))
    if "versionId" in event["detail"]:
        event["detail"]["versionId"] = str(uuid.UUID(int=4))
    return event


BASES = {name: _base(name) for name in EVENT_NAMES}
TOKENS = ['"', "{", "}", "[", "]", ",", ":", "null", "NaN", "1e999", "\\u0000", "\\ud800", '"#"', "\ufeff", "9" * 30]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | st.sampled_from([ARN, SOURCE]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [path for key, child in items for path in [(*prefix, key), *_paths(child, (*prefix, key))]]


def _replace(root: Any, path: tuple[Any, ...], new: Any, drop: bool) -> None:
    """Set (or delete) the value at `path`, if earlier edits left it reachable."""
    parent = root
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(parent, dict) and drop:
        parent.pop(last, None)
    elif isinstance(parent, dict) or (isinstance(parent, list) and isinstance(last, int) and last < len(parent)):
        parent[last] = new


@st.composite
def mutated_bodies(draw: st.DrawFn) -> str:
    """A real event with a few values replaced or deleted, then a few text edits to its JSON."""
    event = copy.deepcopy(BASES[draw(st.sampled_from(EVENT_NAMES))])
    for path in draw(st.lists(st.sampled_from(_paths(event)), max_size=3)):
        _replace(event, path, draw(JSON_VALUES), draw(st.booleans()))
    body = json.dumps(event, ensure_ascii=draw(st.booleans()))
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, len(body)))
        end = draw(st.integers(start, min(len(body), start + 12)))
        insert = draw(st.sampled_from(TOKENS) | st.text(max_size=6) | st.just(body[start:end] * 2))
        body = body[:start] + insert + body[end:]
    return body


@settings(deadline=None, max_examples=300)
@given(mutated_bodies())
def test_mutated_real_events_give_a_verdict_never_an_exception(body: str) -> None:
    """Real events with values retyped or dropped and their text cut, doubled or spliced: never an exception."""
    assert_well_formed(parse(body))


@settings(deadline=None)
@given(st.sampled_from(EVENT_NAMES), st.data())
def test_every_proper_prefix_of_a_real_event_is_not_json(name: str, data: st.DataObject) -> None:
    """A message cut short anywhere (a truncated delivery) is rejected as not JSON."""
    body = json.dumps(BASES[name])
    cut = data.draw(st.integers(0, len(body) - 1))
    result = parse(body[:cut])
    assert reason_of(result) is RejectReason.NOT_JSON


@settings(deadline=None)
@given(st.sampled_from(EVENT_NAMES), st.randoms(use_true_random=False), st.sampled_from(["", "\ufeff", " \r\n"]))
def test_reformatting_a_real_event_changes_nothing(name: str, rng: random.Random, prefix: str) -> None:
    """Key order, indentation, escaping and a BOM do not change the event parsed."""

    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {key: shuffled(child) for key, child in items}
        return [shuffled(child) for child in value] if isinstance(value, list) else value

    original = parse(json.dumps(BASES[name]))
    body = prefix + json.dumps(shuffled(BASES[name]), indent=rng.choice([None, 0, 4]), ensure_ascii=rng.random() < 0.5)
    assert isinstance(original, RotationEvent)
    assert parse(body) == original


@settings(deadline=None)
@given(st.sampled_from(EVENT_NAMES), st.text(max_size=30).filter(lambda s: s != SOURCE))
def test_any_other_source_is_wrong_source(name: str, source: str) -> None:
    """A real event claiming any other source is rejected as wrong_source."""
    result = parse(json.dumps({**BASES[name], "source": source}))
    assert reason_of(result) is RejectReason.WRONG_SOURCE


@settings(deadline=None)
@given(st.sampled_from(sorted(ROTATION_EVENTS | API_CALL_EVENTS)), st.text(max_size=30))
def test_any_other_event_name_is_unknown(name: str, other: str) -> None:
    """A real event renamed to anything rotaudit does not handle is rejected as unknown_event."""
    if other in ROTATION_EVENTS | API_CALL_EVENTS:
        return
    event = copy.deepcopy(BASES[name])
    event["detail"]["eventName"] = other
    result = parse(json.dumps(event))
    assert reason_of(result) is RejectReason.UNKNOWN_EVENT


@settings(deadline=None)
@given(st.sampled_from(EVENT_NAMES), st.booleans())
def test_an_sns_wrapped_real_event_is_not_an_event(name: str, extra: bool) -> None:
    """EventBridge -> SNS -> SQS without raw delivery wraps the event: rotaudit reads raw only (README)."""
    wrapper = {"Type": "Notification", "Message": json.dumps(BASES[name]), "eventSource": EVENT_SOURCE}
    result = parse(json.dumps({**wrapper, **({"source": SOURCE} if extra else {})}))
    assert reason_of(result) is RejectReason.NOT_AN_EVENT


# ------------------------------------------------------------------------------------------------ end to end


def _mixed(corpus: list[Case]) -> list[tuple[str, dict[str, Any]]]:
    """Bad and valid messages interleaved (so batches mix), each valid one twice, tagged with its case id."""
    bad = [case for case in corpus if not case.valid and case.sqs]
    valid = [case for case in corpus if case.valid]
    order: list[Case] = []
    for index in range(max(len(bad), len(valid))):
        order.extend(bad[index : index + 1] + valid[index : index + 1])
    order.extend(random.Random(7).sample(valid, len(valid)))  # duplicate deliveries
    return [(case.body, {CASE_ATTRIBUTE: {"DataType": "String", "StringValue": case.case_id}}) for case in order]


def _dlq_problems(dead: list[dict[str, Any]], bad: dict[str, Case]) -> list[str]:
    """What is wrong with the DLQ: each bad case there exactly once, with its reason and a detail, body unchanged."""
    problems: list[str] = []
    by_case: dict[str, list[dict[str, Any]]] = {}
    for message in dead:
        attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
        by_case.setdefault(attributes.get(CASE_ATTRIBUTE, "?"), []).append({**attributes, "body": message["Body"]})
    for case_id, case in bad.items():
        copies = by_case.pop(case_id, [])
        if len(copies) != 1:
            problems.append(f"{case_id}: {len(copies)} DLQ copies")
        elif copies[0].get("rotaudit.reject_reason") != case.reason:
            problems.append(f"{case_id}: reason {copies[0].get('rotaudit.reject_reason')}, expected {case.reason}")
        elif copies[0]["body"] != case.body or not copies[0].get("rotaudit.reject_detail"):
            problems.append(f"{case_id}: body changed or no detail")
    return problems + [f"{case_id}: valid, but dead-lettered" for case_id in by_case]


@pytest.mark.slow
def test_daemon_dead_letters_every_bad_case_and_audits_every_valid_one_once(
    endpoint: str, stack: dict[str, str], tmp_path: Path
) -> None:
    """`rotaudit run` over the corpus stays up, dead-letters each bad case with its reason, audits valid ones once."""
    corpus = build_corpus(uuid.uuid4().hex[:8])
    bad = {case.case_id: case for case in corpus if not case.valid and case.sqs}
    valid = {case.case_id: case for case in corpus if case.valid}
    sent = send(endpoint, stack["queue_url"], _mixed(corpus))
    env = daemon_env(
        endpoint,
        stack,
        ROTAUDIT_ALLOWED_ACCOUNTS=",".join(sorted(ALLOWED_ACCOUNTS)),
        ROTAUDIT_ALLOWED_REGIONS=",".join(sorted(ALLOWED_REGIONS)),
        ROTAUDIT_SNS_TOPIC_ARN=stack["topic_arn"],
        ROTAUDIT_SCAN_ENABLED="false",
    )
    daemon = DaemonProcess(env, tmp_path)
    try:
        daemon.wait_ready()
        try:
            wait_until(lambda: daemon.total("rotaudit_messages_deleted_total") >= sent, timeout_s=40, interval_s=0.5)
        except AssertionError:
            warnings = Counter(r["event"] for r in daemon.log_records() if r["level"] != "info")
            deleted = daemon.total("rotaudit_messages_deleted_total")
            raise AssertionError(
                f"{deleted:.0f} of {sent} messages settled; warnings logged: {dict(warnings)}"
            ) from None
        assert daemon.get("/healthz")[0] == 200, "the daemon is not healthy after the corpus"
        assert queue_depth(endpoint, stack["queue_url"]) == 0, "messages left in the main queue"
        rejected = {dict(k)["reason"]: v for k, v in daemon.samples("rotaudit_messages_rejected_total").items() if v}
        processed = Counter[str]()
        for labels, value in daemon.samples("rotaudit_events_processed_total").items():
            processed[dict(labels)["outcome"]] += int(value)
    finally:
        exit_code = daemon.stop()
    assert exit_code == 0

    problems = _dlq_problems(receive_all(endpoint, stack["dlq_url"]), bad)
    # Every valid event is audited exactly once, despite its duplicate delivery.
    items = [item for item in scan_table(endpoint, stack["table_name"]) if item.get("kind", {}).get("S") == "event"]
    per_secret = Counter(item["secret_arn"]["S"] for item in items)
    problems += [
        f"{i}: {per_secret[c.secret_arn]} audit items" for i, c in valid.items() if per_secret[c.secret_arn] != 1
    ]
    assert not problems, "\n".join(problems)
    assert len(items) == len(valid)

    assert rejected == {str(reason): float(n) for reason, n in Counter(case.reason for case in bad.values()).items()}
    assert +processed == Counter({"recorded": len(valid), "duplicate": len(valid)})  # + drops the zero series
    records = daemon.log_records()  # fails on a traceback or any other non-JSON line
    assert Counter(r["reason"] for r in records if r["event"] == "message.rejected") == Counter(
        str(case.reason) for case in bad.values()
    )
    print(f"\nmalformed corpus: {len(bad)} bad kinds, {len(valid)} valid edge cases, {sent} messages sent")
