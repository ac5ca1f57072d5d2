"""The emulator's rotation engine stand-in: RotateSecret, the rotation functions, retries and events, as on AWS."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import pytest

from daemon.events import RotationEvent, parse_message
from tests.support import boto, wait_until
from tests.support.rotation import (
    FUNCTION_ARN,
    Failure,
    configure,
    raw_state,
    received_events,
    state,
    wait_for_outcome,
)

pytestmark = pytest.mark.usefixtures("rotations_settle")

ALWAYS = None


def database_secret(endpoint: str, username: str = "app") -> str:
    """A secret holding database credentials, as the rotation templates expect; returns its ARN."""
    value = {"engine": "postgres", "host": "db.internal", "username": username, "password": uuid.uuid4().hex}
    name = f"rotation/{uuid.uuid4().hex[:10]}"
    return str(boto("secretsmanager", endpoint).create_secret(Name=name, SecretString=json.dumps(value))["ARN"])


def current_version(endpoint: str, arn: str) -> str:
    stages = boto("secretsmanager", endpoint).describe_secret(SecretId=arn)["VersionIdsToStages"]
    return next(version for version, labels in stages.items() if "AWSCURRENT" in labels)


def values_of(endpoint: str, arn: str) -> list[str]:
    """Every value the secret's versions hold."""
    sm = boto("secretsmanager", endpoint)
    found = []
    for version in sm.describe_secret(SecretId=arn)["VersionIdsToStages"]:
        with contextlib.suppress(sm.exceptions.ResourceNotFoundException):  # a version staged with no value yet
            found.append(sm.get_secret_value(SecretId=arn, VersionId=version)["SecretString"])
    return found


def test_rotate_secret_refuses_while_awspending_dangles(endpoint: str) -> None:
    """AWSPENDING on a version other than AWSCURRENT: RotateSecret refuses, and the refusal is counted."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn)
    sm.put_secret_value(SecretId=arn, SecretString="{}", VersionStages=["AWSPENDING"])
    with pytest.raises(sm.exceptions.InvalidRequestException):
        sm.rotate_secret(SecretId=arn)
    assert state(endpoint, arn).refusals_by_reason == {"previous_rotation_incomplete": 1}
    assert state(endpoint, arn).rotations == []


def test_rotate_secret_accepts_awspending_on_awscurrent(endpoint: str) -> None:
    """AWSPENDING on the AWSCURRENT version (what a successful rotation leaves): RotateSecret starts a rotation."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn)
    current = current_version(endpoint, arn)
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", MoveToVersionId=current)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    assert wait_for_outcome(endpoint, arn, token).status == "succeeded"


def test_rotate_secret_accepts_awspending_absent(endpoint: str) -> None:
    """No AWSPENDING anywhere: RotateSecret starts a rotation."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    assert wait_for_outcome(endpoint, arn, token).status == "succeeded"


def test_rotate_secret_refuses_without_a_rotation_function(endpoint: str) -> None:
    """No function attached to the secret and none in the call: RotateSecret refuses, as on AWS."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    with pytest.raises(sm.exceptions.InvalidRequestException):
        sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30})
    assert "AWSPENDING" not in str(sm.describe_secret(SecretId=arn)["VersionIdsToStages"])


def test_the_new_version_id_is_the_client_request_token(endpoint: str) -> None:
    """The token becomes the new version's id, staged AWSPENDING before createSecret puts a value in it."""
    sm, arn, token = boto("secretsmanager", endpoint), database_secret(endpoint), str(uuid.uuid4())
    configure(endpoint, arn, failures=[Failure("createSecret", ALWAYS)], retries=0)
    answer = sm.rotate_secret(SecretId=arn, ClientRequestToken=token)
    assert answer["VersionId"] == token
    wait_for_outcome(endpoint, arn, token)
    assert state(endpoint, arn).holder("AWSPENDING") == token
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId=arn, VersionId=token)


def test_a_repeated_call_with_the_same_token_starts_nothing(endpoint: str) -> None:
    """RotateSecret again with the running rotation's token answers the same version and starts no rotation."""
    sm, arn, token = boto("secretsmanager", endpoint), database_secret(endpoint), str(uuid.uuid4())
    configure(endpoint, arn, failures=[Failure("createSecret", ALWAYS)], retries=2, retry_delay_s=30)
    sm.rotate_secret(SecretId=arn, ClientRequestToken=token)
    again = sm.rotate_secret(SecretId=arn, ClientRequestToken=token)
    assert again["VersionId"] == token
    assert len(state(endpoint, arn).rotations) == 1
    sm.cancel_rotate_secret(SecretId=arn)  # ends the rotation instead of waiting out its retries


def test_a_single_user_rotation_succeeds_and_awscurrent_works_after(endpoint: str) -> None:
    """All four steps run: AWSCURRENT moves to the token, its password logs in, and the old one no longer does."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, strategy="single-user")
    old = current_version(endpoint, arn)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    assert wait_for_outcome(endpoint, arn, token).status == "succeeded"
    after = state(endpoint, arn)
    assert (after.holder("AWSCURRENT"), after.holder("AWSPREVIOUS"), after.current_works) == (token, old, True)
    assert after.db_accepts == [token]
    assert "LastRotatedDate" in sm.describe_secret(SecretId=arn)


def test_set_secret_failing_after_the_change_leaves_awscurrent_broken(endpoint: str) -> None:
    """setSecret changed the database, then failed: AWSCURRENT no longer logs in; only the pending version does."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, failures=[Failure("setSecret", ALWAYS, after=True)], retries=0)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    outcome = wait_for_outcome(endpoint, arn, token)
    assert (outcome.status, outcome.attempts[-1].failed_step) == ("failed", "setSecret")
    after = state(endpoint, arn)
    assert (after.current_works, after.db_accepts, after.holder("AWSPENDING")) == (False, [token], token)


def test_alternating_users_keep_awscurrent_working_through_a_set_secret_failure(endpoint: str) -> None:
    """Alternating users: setSecret sets the other user's password, so AWSCURRENT still logs in after it fails."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(
        endpoint, arn, strategy="alternating-users", failures=[Failure("setSecret", ALWAYS, after=True)], retries=0
    )
    current = current_version(endpoint, arn)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    assert wait_for_outcome(endpoint, arn, token).status == "failed"
    after = state(endpoint, arn)
    assert (after.current_works, after.db_accepts) == (True, sorted([current, token]))
    pending = json.loads(sm.get_secret_value(SecretId=arn, VersionId=token)["SecretString"])
    assert pending["username"] == "app_clone"


def test_secrets_manager_retries_with_the_same_token_and_recovers(endpoint: str) -> None:
    """A transient setSecret failure: Secrets Manager's retry, same token, finds the password set and finishes."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, failures=[Failure("setSecret", 1, after=True)], retries=2, retry_delay_s=0.2)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    outcome = wait_for_outcome(endpoint, arn, token)
    assert [(a.outcome, a.failed_step) for a in outcome.attempts] == [("failed", "setSecret"), ("succeeded", None)]
    after = state(endpoint, arn)
    assert (after.holder("AWSCURRENT"), after.current_works) == (token, True)


def test_removing_awspending_makes_secrets_managers_retry_fail(endpoint: str) -> None:
    """AWSPENDING removed between attempts: the retry fails the function's pre-check, in its first step."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, failures=[Failure("setSecret", 1)], retries=1, retry_delay_s=2.0)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    wait_until(lambda: (r := state(endpoint, arn).rotation(token)) and r.attempts[0].outcome == "failed")
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    outcome = wait_for_outcome(endpoint, arn, token)
    assert (outcome.status, len(outcome.attempts)) == ("failed", 2)
    assert (outcome.attempts[1].failed_step, outcome.attempts[1].reason) == ("createSecret", "not_pending")


def test_cancel_rotate_secret_stops_the_retries(endpoint: str) -> None:
    """CancelRotateSecret during a rotation: no further attempt runs, and the labels stay as they were."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, failures=[Failure("setSecret", ALWAYS)], retries=5, retry_delay_s=30)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    wait_until(lambda: (r := state(endpoint, arn).rotation(token)) and r.attempts[0].outcome == "failed")
    sm.cancel_rotate_secret(SecretId=arn)
    outcome = wait_for_outcome(endpoint, arn, token)
    assert (outcome.status, len(outcome.attempts)) == ("cancelled", 1)
    assert state(endpoint, arn).holder("AWSPENDING") == token
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is False


def test_a_test_rotation_runs_test_secret_and_removes_its_version(endpoint: str) -> None:
    """RotateImmediately=false: testSecret runs on an AWSPENDING version that is removed afterwards."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    before = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    answer = sm.rotate_secret(SecretId=arn, RotationLambdaARN=FUNCTION_ARN, RotateImmediately=False)
    outcome = wait_for_outcome(endpoint, arn, answer["VersionId"])
    assert (outcome.test, outcome.status) == (True, "succeeded")
    described = sm.describe_secret(SecretId=arn)
    assert (described["VersionIdsToStages"], described["RotationEnabled"]) == (before, True)


def test_a_plain_secret_gets_a_new_random_value(endpoint: str) -> None:
    """A value that is not database credentials gets the generic function: a new value becomes AWSCURRENT."""
    sm = boto("secretsmanager", endpoint)
    arn = str(sm.create_secret(Name=f"plain/{uuid.uuid4().hex[:10]}", SecretString="not json")["ARN"])
    token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=FUNCTION_ARN)["VersionId"]
    assert wait_for_outcome(endpoint, arn, token).status == "succeeded"
    assert sm.get_secret_value(SecretId=arn)["VersionId"] == token
    assert sm.get_secret_value(SecretId=arn)["SecretString"] != "not json"


def test_a_value_put_by_hand_abandons_the_rotation(endpoint: str) -> None:
    """PutSecretValue of a new AWSCURRENT during a rotation: AWSPENDING is removed and the rotation abandoned."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, failures=[Failure("setSecret", ALWAYS)], retries=5, retry_delay_s=30)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": "app", "password": "by-hand"}))
    assert wait_for_outcome(endpoint, arn, token).status == "abandoned"
    assert state(endpoint, arn).holder("AWSPENDING") is None


def _rotation_events(endpoint: str, queue_url: str, arn: str, wanted: int) -> list[RotationEvent]:
    """The parsed events for `arn` in the queue, oldest first, once `wanted` of them have arrived."""
    events = [parse_message(json.dumps(envelope)) for envelope in received_events(endpoint, queue_url, arn, wanted)]
    assert all(isinstance(event, RotationEvent) for event in events), events
    return [event for event in events if isinstance(event, RotationEvent)]


def test_rotation_events_reach_the_provisioned_queue_and_parse(endpoint: str, stack: dict[str, str]) -> None:
    """Each attempt's events go through the real rules to the queue and parse to the rotation's id and step."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, failures=[Failure("setSecret", 1)], retries=2, retry_delay_s=0.2)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    rotation = wait_for_outcome(endpoint, arn, token)
    found = _rotation_events(endpoint, stack["queue_url"], arn, wanted=5)  # with finishSecret's label event
    events = [event for event in found if event.kind == "service"]
    names = sorted(event.event_name for event in events)
    assert names == ["RotationFailed", "RotationStarted", "RotationStarted", "RotationSucceeded"]
    assert {event.rotation_id for event in events} == {rotation.rotation_id}
    assert len({event.event_id for event in events}) == 4
    failed = next(event for event in events if event.event_name == "RotationFailed")
    assert (failed.failed_step, FUNCTION_ARN in str(failed.error_message)) == ("setSecret", True)


def test_the_state_endpoint_never_shows_a_password(endpoint: str) -> None:
    """After rotations that succeed and fail, no value any version holds appears in the state endpoint's answer."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, strategy="alternating-users")
    assert wait_for_outcome(endpoint, arn, sm.rotate_secret(SecretId=arn)["VersionId"]).status == "succeeded"
    configure(endpoint, arn, strategy="alternating-users", failures=[Failure("testSecret", 1)], retries=0)
    assert wait_for_outcome(endpoint, arn, sm.rotate_secret(SecretId=arn)["VersionId"]).status == "failed"
    body = raw_state(endpoint, arn)
    passwords: list[Any] = [json.loads(value)["password"] for value in values_of(endpoint, arn)]
    assert len(passwords) >= 2
    assert [password for password in passwords if password in body] == []


def _label_events(endpoint: str, queue_url: str, arn: str, wanted: int) -> list[tuple[str | None, str | None]]:
    """(label, version id) of the `Secret Label Updated` events for `arn` in the queue, once `wanted` arrived."""
    events = _rotation_events(endpoint, queue_url, arn, wanted)
    return [(event.label, event.version_id) for event in events if event.kind == "label"]


def test_finish_secret_announces_the_awscurrent_move(endpoint: str, stack: dict[str, str]) -> None:
    """finishSecret's move of AWSCURRENT sends one Secret Label Updated event, between the rotation's start and end."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    assert wait_for_outcome(endpoint, arn, token).status == "succeeded"
    events = _rotation_events(endpoint, stack["queue_url"], arn, wanted=3)
    assert [(e.event_name, e.label, e.version_id) for e in events] == [
        ("RotationStarted", None, None),
        ("SecretLabelUpdated", "AWSCURRENT", token),
        ("RotationSucceeded", None, None),
    ]
    assert events[1].kind == "label"
    assert events[0].event_time <= events[1].event_time <= events[2].event_time


def test_finish_secret_failing_after_its_move_still_announced_it(endpoint: str, stack: dict[str, str]) -> None:
    """finishSecret fails after moving AWSCURRENT: the move's label event is in the history the planner reads."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    configure(endpoint, arn, failures=[Failure("finishSecret", ALWAYS, after=True)], retries=0)
    token = sm.rotate_secret(SecretId=arn)["VersionId"]
    assert wait_for_outcome(endpoint, arn, token).status == "failed"
    events = _rotation_events(endpoint, stack["queue_url"], arn, wanted=3)
    assert [(e.event_name, e.label, e.version_id) for e in events] == [
        ("RotationStarted", None, None),
        ("SecretLabelUpdated", "AWSCURRENT", token),
        ("RotationFailed", None, None),
    ]
    assert events[2].failed_step == "finishSecret"


def test_label_moves_by_hand_are_announced_except_awspending_and_awsprevious(
    endpoint: str, stack: dict[str, str]
) -> None:
    """UpdateSecretVersionStage and PutSecretValue announce AWSCURRENT and custom labels, never AWSPENDING or
    AWSPREVIOUS, nor a label only removed."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    first = current_version(endpoint, arn)
    pending = sm.put_secret_value(SecretId=arn, SecretString="{}", VersionStages=["AWSPENDING"])["VersionId"]
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=pending)
    sm.update_secret_version_stage(SecretId=arn, VersionStage="rotaudit-held-x", MoveToVersionId=pending)
    sm.update_secret_version_stage(SecretId=arn, VersionStage="rotaudit-held-x", RemoveFromVersionId=pending)
    second = sm.put_secret_value(SecretId=arn, SecretString='{"v": 2}')["VersionId"]  # AWSPREVIOUS follows
    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=second
    )
    assert _label_events(endpoint, stack["queue_url"], arn, wanted=3) == [
        ("rotaudit-held-x", pending),
        ("AWSCURRENT", second),
        ("AWSCURRENT", first),
    ]


def test_an_unchanged_label_is_not_announced(endpoint: str, stack: dict[str, str]) -> None:
    """A repeated PutSecretValue (same token, same value) and a label moved to where it already is send nothing."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    token, value = str(uuid.uuid4()), json.dumps({"username": "app", "password": "p"})
    sm.put_secret_value(SecretId=arn, SecretString=value, ClientRequestToken=token)
    sm.put_secret_value(SecretId=arn, SecretString=value, ClientRequestToken=token)
    sm.update_secret_version_stage(SecretId=arn, VersionStage="custom", MoveToVersionId=token)
    sm.update_secret_version_stage(SecretId=arn, VersionStage="custom", MoveToVersionId=token)
    sm.update_secret_version_stage(SecretId=arn, VersionStage="last", MoveToVersionId=token)
    assert _label_events(endpoint, stack["queue_url"], arn, wanted=3) == [
        ("AWSCURRENT", token),
        ("custom", token),
        ("last", token),
    ]


def test_a_label_moved_where_it_already_is_stays_there_once(endpoint: str) -> None:
    """UpdateSecretVersionStage of a label onto the version that has it changes nothing (moto listed it twice)."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    version = current_version(endpoint, arn)
    for _ in range(2):
        sm.update_secret_version_stage(SecretId=arn, VersionStage="rotaudit-held-x", MoveToVersionId=version)
    assert sorted(sm.describe_secret(SecretId=arn)["VersionIdsToStages"][version]) == ["AWSCURRENT", "rotaudit-held-x"]


def test_a_label_on_another_version_moves_only_with_remove_from_version_id(endpoint: str) -> None:
    """A label attached elsewhere moves only when RemoveFromVersionId names where it is, as on AWS."""
    sm, arn = boto("secretsmanager", endpoint), database_secret(endpoint)
    first = current_version(endpoint, arn)
    second = sm.put_secret_value(SecretId=arn, SecretString="{}", VersionStages=["custom"])["VersionId"]
    with pytest.raises(sm.exceptions.InvalidParameterException):
        sm.update_secret_version_stage(SecretId=arn, VersionStage="custom", MoveToVersionId=first)
    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="custom", MoveToVersionId=first, RemoveFromVersionId=second
    )
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert ("custom" in stages[first], "custom" in stages.get(second, [])) == (True, False)
