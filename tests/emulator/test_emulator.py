"""The embedded emulator: moto patches still apply and behave like AWS, stats and latency middleware work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from daemon.devtools.emulator import STATS_PATH, STATS_RESET_PATH, Emulator, PatchError, apply_patches, start_emulator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account for any access key
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
STRIPPED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN")

ClientFactory = Callable[[str], Any]


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in STRIPPED_ENV:
            mp.delenv(name, raising=False)
        for name, value in FAKE_ENV.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def emulator(aws_env: None) -> Iterator[Emulator]:
    running = start_emulator(port=0)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> ClientFactory:
    def make(service: str) -> Any:
        return boto3.session.Session().client(service, endpoint_url=emulator.endpoint_url, region_name=REGION)

    return make


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_apply_patches_returns_every_patch_and_is_idempotent() -> None:
    """apply_patches() names every patch and a second call changes nothing (PatchError = moto moved)."""
    first = apply_patches()
    assert first == [
        "sqs-retention-check-o1",
        "dynamodb-query-rejects-key-filter",
        "ssm-automation-stand-in",
        "sqs-send-dedup-check-o1",
        "dynamodb-transaction-check-then-write",
        "dynamodb-single-writer",
        "sqs-serialised",
        "secretsmanager-list-in-one-pass",
        "sqs-redrive-policy-compact",
        "ecs-service-az-rebalancing",
        "logs-query-definitions-stand-in",
        "dynamodb-query-partition-o1",
        "events-serialised",
        "secretsmanager-current-follows-label",
        "secretsmanager-rotation-engine",
        "securityhub-findings-as-aws",
        "iam-simulate-principal-policy-stand-in",
        "sts-assume-role-trust",
        "events-test-event-pattern",
    ]
    assert apply_patches() == first


def test_apply_patches_refuses_another_moto_minor_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """apply_patches() raises PatchError when moto is not the pinned major.minor version."""
    import moto

    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(PatchError, match=r"moto 5\.3\.0"):
        apply_patches()


def test_apply_patches_names_a_patch_whose_target_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """apply_patches() raises PatchError naming the patch when its moto target no longer exists."""
    from moto.sqs.models import SQSBackend

    monkeypatch.delattr(SQSBackend, "is_message_valid_based_on_retention_period")
    with pytest.raises(PatchError, match="sqs-retention-check-o1"):
        apply_patches()


def test_the_rotation_patch_names_itself_when_rotate_secret_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """apply_patches() raises PatchError naming the rotation engine's patch when moto's RotateSecret moved."""
    from moto.secretsmanager.models import SecretsManagerBackend

    monkeypatch.delattr(SecretsManagerBackend, "rotate_secret")
    with pytest.raises(PatchError, match="secretsmanager-rotation-engine"):
        apply_patches()


def test_get_secret_value_follows_awscurrent_after_a_label_move(client: ClientFactory) -> None:
    """GetSecretValue without a stage returns the version AWSCURRENT moved to, as AWS does."""
    sm = client("secretsmanager")
    name = unique("emu-secret")
    first = sm.create_secret(Name=name, SecretString="first")["VersionId"]
    second = sm.put_secret_value(SecretId=name, SecretString="second", VersionStages=["AWSPENDING"])["VersionId"]
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=second, RemoveFromVersionId=first
    )
    assert sm.get_secret_value(SecretId=name)["VersionId"] == second


@pytest.fixture
def keyed_table(client: ClientFactory) -> str:
    name = unique("emu-table")
    ddb = client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for sk, colour in (("a", "red"), ("b", "blue")):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"S": sk}, "colour": {"S": colour}})
    return name


@pytest.mark.parametrize(
    ("filter_expression", "names", "key"),
    [
        ("sk = :v", None, "sk"),
        ("#k = :v", {"#k": "sk"}, "sk"),
        ("colour = :v OR attribute_exists(#p)", {"#p": "pk"}, "pk"),
    ],
)
def test_query_rejects_key_attribute_in_filter(
    client: ClientFactory, keyed_table: str, filter_expression: str, names: dict[str, str] | None, key: str
) -> None:
    """A Query whose FilterExpression names a key attribute fails with ValidationException, as on AWS."""
    extra = {"ExpressionAttributeNames": names} if names else {}
    with pytest.raises(ClientError) as caught:
        client("dynamodb").query(
            TableName=keyed_table,
            KeyConditionExpression="pk = :p",
            FilterExpression=filter_expression,
            ExpressionAttributeValues={":p": {"S": "p"}, ":v": {"S": "a"}},
            **extra,
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].endswith(f"Primary key attribute: {key}")


def test_query_filter_on_non_key_attribute_still_works(client: ClientFactory, keyed_table: str) -> None:
    """A Query filtering on a non-key attribute returns the matching items."""
    response = client("dynamodb").query(
        TableName=keyed_table,
        KeyConditionExpression="pk = :p",
        FilterExpression="#c = :c",
        ExpressionAttributeNames={"#c": "colour"},
        ExpressionAttributeValues={":p": {"S": "p"}, ":c": {"S": "blue"}},
    )
    assert [item["sk"]["S"] for item in response["Items"]] == ["b"]


def test_query_reads_its_partition_in_order_and_pages(client: ClientFactory, keyed_table: str) -> None:
    """A Query returns only its partition, in key order either way, paged by Limit (the partition-only patch)."""
    ddb = client("dynamodb")
    for pk in ("q1", "q2", "q3"):
        for sk in ("c", "a", "b"):
            ddb.put_item(TableName=keyed_table, Item={"pk": {"S": pk}, "sk": {"S": f"{pk}-{sk}"}})

    def query(pk: str = "q2", **extra: Any) -> dict[str, Any]:
        return ddb.query(
            TableName=keyed_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
            **extra,
        )

    assert [i["sk"]["S"] for i in query()["Items"]] == ["q2-a", "q2-b", "q2-c"]
    assert [i["sk"]["S"] for i in query(ScanIndexForward=False)["Items"]] == ["q2-c", "q2-b", "q2-a"]
    first = query(Limit=2)
    rest = query(Limit=2, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["sk"]["S"] for i in first["Items"] + rest["Items"]] == ["q2-a", "q2-b", "q2-c"]
    assert query("nowhere")["Items"] == []


def test_scan_filter_on_key_attribute_still_works(client: ClientFactory, keyed_table: str) -> None:
    """A Scan may filter on key attributes (AWS allows it), so the patch leaves Scan alone."""
    response = client("dynamodb").scan(
        TableName=keyed_table, FilterExpression="sk = :s", ExpressionAttributeValues={":s": {"S": "a"}}
    )
    assert [item["colour"]["S"] for item in response["Items"]] == ["red"]


def sqs_queue(client: ClientFactory, retention_s: int) -> tuple[Any, str, str]:
    sqs = client("sqs")
    name = unique("emu-queue")
    url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": str(retention_s)})["QueueUrl"]
    return sqs, name, url


def backdate_all(queue_name: str, seconds: float) -> None:
    """Make every message in the queue look `seconds` older (the server runs in this process)."""
    from moto.sqs.models import sqs_backends

    for message in sqs_backends[ACCOUNT][REGION].get_queue(queue_name)._messages:
        message.sent_timestamp -= int(seconds * 1000)


def test_list_secrets_pages_every_match_once_in_order(client: ClientFactory) -> None:
    """Filtered ListSecrets pages hold each match once, in creation order, with no empty last page."""
    sm = client("secretsmanager")
    prefix = unique("pages")
    managed = []
    for i in range(13):
        tags = [{"Key": "Managed", "Value": "true"}] if i % 3 else [{"Key": "Managed", "Value": "false"}]
        name = f"{prefix}/{i:02d}"
        sm.create_secret(Name=name, SecretString="x", Tags=tags)
        if i % 3:
            managed.append(name)
    filters = [{"Key": "name", "Values": [prefix]}, {"Key": "tag-value", "Values": ["true"]}]
    pages, token = [], None
    while True:
        page = sm.list_secrets(Filters=filters, MaxResults=4, **({"NextToken": token} if token else {}))
        pages.append([secret["Name"] for secret in page["SecretList"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(page) for page in pages] == [4, 4]
    assert [name for page in pages for name in page] == managed


def test_sqs_message_older_than_retention_is_not_received(client: ClientFactory) -> None:
    """A message older than MessageRetentionPeriod is never returned by ReceiveMessage."""
    sqs, name, url = sqs_queue(client, retention_s=60)
    sqs.send_message(QueueUrl=url, MessageBody="stale")
    backdate_all(name, seconds=61)
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def test_sqs_retention_check_keeps_young_and_drops_old_messages(client: ClientFactory) -> None:
    """The patched retention check says yes inside the retention period and no after it."""
    from moto.sqs.models import sqs_backends

    sqs, name, url = sqs_queue(client, retention_s=60)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    backend = sqs_backends[ACCOUNT][REGION]
    (message,) = backend.get_queue(name)._messages
    verdicts = []
    for age_s in (0, 59, 61, 3600):
        message.sent_timestamp = int((time.time() - age_s) * 1000)
        verdicts.append(backend.is_message_valid_based_on_retention_period(name, message))
    assert verdicts == [True, True, False, False]


def test_sqs_receive_and_delete_still_work(client: ClientFactory) -> None:
    """Messages within retention are received, and deleted messages do not come back."""
    sqs, _, url = sqs_queue(client, retention_s=300)
    sent = {f"m{i}" for i in range(15)}
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": b, "MessageBody": b} for b in sorted(sent)[:10]])
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": b, "MessageBody": b} for b in sorted(sent)[10:]])
    received: set[str] = set()
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received |= {m["Body"] for m in messages}
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        assert sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed", []) == []
    assert received == sent
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_ssm_automation_execution_succeeds(client: ClientFactory) -> None:
    """StartAutomationExecution returns an id that GetAutomationExecution reports as Success."""
    ssm = client("ssm")
    parameters = {"SecretId": ["app/db"]}
    execution_id = ssm.start_automation_execution(DocumentName="Rotaudit-Fix", Parameters=parameters)[
        "AutomationExecutionId"
    ]
    execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
    assert execution["AutomationExecutionId"] == execution_id
    assert execution["DocumentName"] == "Rotaudit-Fix"
    assert execution["AutomationExecutionStatus"] == "Success"
    assert execution["Parameters"] == parameters


def test_ssm_stop_automation_execution_cancels_it(client: ClientFactory) -> None:
    """StopAutomationExecution marks the execution Cancelled."""
    ssm = client("ssm")
    execution_id = ssm.start_automation_execution(DocumentName="Rotaudit-Fix")["AutomationExecutionId"]
    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
    assert execution["AutomationExecutionStatus"] == "Cancelled"


def test_ssm_get_unknown_automation_execution_is_not_found(client: ClientFactory) -> None:
    """GetAutomationExecution for an unknown id fails with AutomationExecutionNotFoundException."""
    with pytest.raises(ClientError) as caught:
        client("ssm").get_automation_execution(AutomationExecutionId=str(uuid.uuid4()))
    assert caught.value.response["Error"]["Code"] == "AutomationExecutionNotFoundException"


def test_stats_count_calls_by_operation_and_reset(emulator: Emulator, client: ClientFactory) -> None:
    """stats() counts each AWS call as service.Operation, and reset_stats() clears the counts."""
    sqs, _, url = sqs_queue(client, retention_s=300)
    emulator.reset_stats()
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.receive_message(QueueUrl=url)
    stats = emulator.stats()
    assert stats["sqs.SendMessage"] >= 3
    assert stats["sqs.ReceiveMessage"] >= 1
    emulator.reset_stats()
    assert emulator.stats() == {}


def test_stats_count_query_protocol_actions(emulator: Emulator) -> None:
    """A query-protocol call (Action in the form body) is counted and still served by moto."""
    emulator.reset_stats()
    sts = boto3.session.Session().client("sts", endpoint_url=emulator.endpoint_url, region_name=REGION)
    assert sts.get_caller_identity()["Account"] == ACCOUNT
    assert emulator.stats() == {"sts.GetCallerIdentity": 1}


def test_stats_are_served_over_http(emulator: Emulator, client: ClientFactory) -> None:
    """GET /_rotaudit/stats returns the counts as JSON and POST /_rotaudit/stats/reset clears them."""
    emulator.reset_stats()
    client("sqs").list_queues()
    with urllib.request.urlopen(emulator.endpoint_url + STATS_PATH) as response:  # noqa: S310
        assert json.load(response) == {"sqs.ListQueues": 1}
    reset = urllib.request.Request(emulator.endpoint_url + STATS_RESET_PATH, method="POST")  # noqa: S310
    with urllib.request.urlopen(reset):  # noqa: S310
        pass
    assert emulator.stats() == {}


def test_latency_delays_each_call(aws_env: None) -> None:
    """latency_ms=50 makes a single AWS call take at least 50 ms."""
    slow = start_emulator(port=0, latency_ms=50)
    try:
        sqs = boto3.session.Session().client("sqs", endpoint_url=slow.endpoint_url, region_name=REGION)
        sqs.list_queues()  # first call pays for client and backend set-up
        started = time.perf_counter()
        sqs.list_queues()
        assert time.perf_counter() - started >= 0.050
    finally:
        slow.stop()


@pytest.mark.slow
def test_module_runs_as_a_process_until_sigterm(aws_env: None) -> None:
    """`python -m daemon.devtools.emulator --port 0` prints its endpoint as JSON and exits 0 on SIGTERM."""
    command = [sys.executable, "-m", "daemon.devtools.emulator", "--port", "0"]
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            endpoint_url = json.loads(process.stdout.readline())["endpoint_url"]
            with urllib.request.urlopen(endpoint_url + STATS_PATH) as response:  # noqa: S310
                assert json.load(response) == {}
            process.terminate()
            _, stderr = process.communicate(timeout=10)
            assert process.returncode == 0, stderr
        finally:
            process.kill()


def test_fifo_content_based_deduplication_still_drops_repeats(client: ClientFactory) -> None:
    """After the send-cost patch, a FIFO queue with content-based deduplication still drops a repeated body."""
    sqs = client("sqs")
    url = sqs.create_queue(
        QueueName=unique("dedup") + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="other", MessageGroupId="g")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "2"


def test_concurrent_transactions_and_puts_do_not_fail(emulator: Emulator, keyed_table: str) -> None:
    """Writers in many threads (transactions among them) all succeed first time: moto's rollback copy is not raced."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    dynamodb = boto3.session.Session().client(
        "dynamodb",
        endpoint_url=emulator.endpoint_url,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16),
    )

    def write(n: int) -> None:
        items = [
            {"Put": {"TableName": keyed_table, "Item": {"pk": {"S": f"p{n}"}, "sk": {"S": f"s{i}"}}}} for i in range(10)
        ]
        dynamodb.transact_write_items(TransactItems=items)
        dynamodb.put_item(TableName=keyed_table, Item={"pk": {"S": f"q{n}"}, "sk": {"S": "x"}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(80)))
    count = dynamodb.scan(TableName=keyed_table, Select="COUNT")["Count"]
    assert count >= 80 * 11


def test_concurrent_deletes_do_not_undo_each_other(emulator: Emulator) -> None:
    """Long-polling receivers and deleters in 8 threads: every message is delivered once and stays deleted.

    Stock moto 5.2 fails this (seen: 1 of 1,000 messages delivered twice, 20 deletes undone).
    """
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    sqs = boto3.session.Session().client(
        "sqs",
        endpoint_url=emulator.endpoint_url,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16),
    )
    url = sqs.create_queue(QueueName=unique("race"), Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for start in range(0, 500, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)])

    def drain(_: int) -> list[str]:
        seen: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if not got:
                return seen
            seen.extend(m["Body"] for m in got)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            assert not sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed")

    with ThreadPoolExecutor(max_workers=8) as pool:
        received = [body for seen in pool.map(drain, range(8)) for body in seen]
    assert sorted(received, key=int) == [str(i) for i in range(500)]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_transactions_keep_their_all_or_nothing_semantics(client: ClientFactory, keyed_table: str) -> None:
    """After the transaction-cost patch a failed condition still cancels the whole transaction, with reasons."""
    dynamodb = client("dynamodb")
    puts = [
        {
            "Put": {
                "TableName": keyed_table,
                "Item": {"pk": {"S": "tx"}, "sk": {"S": sk}},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        for sk in ("one", "two", "a")
    ]
    puts[2]["Put"]["Item"]["pk"] = {"S": "p"}  # the fixture's existing item (p, a): its condition fails
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=puts)
    reasons = caught.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "None", "ConditionalCheckFailed"]
    assert reasons[2]["Item"]["colour"] == {"S": "red"}
    assert dynamodb.get_item(TableName=keyed_table, Key={"pk": {"S": "tx"}, "sk": {"S": "one"}}).get("Item") is None
    dynamodb.transact_write_items(TransactItems=puts[:2])
    assert dynamodb.get_item(TableName=keyed_table, Key={"pk": {"S": "tx"}, "sk": {"S": "one"}})["Item"]


def test_transactions_with_updates_are_all_or_nothing(client: ClientFactory, keyed_table: str) -> None:
    """A transaction with an Update writes every action, or none when a condition fails or an update is invalid."""
    dynamodb = client("dynamodb")

    def update(sk: str, expression: str = "SET n = :n") -> dict[str, Any]:
        return {
            "Update": {
                "TableName": keyed_table,
                "Key": {"pk": {"S": "txu"}, "sk": {"S": sk}},
                "UpdateExpression": expression,
                "ExpressionAttributeValues": {":n": {"N": "1"}},
            }
        }

    def item(sk: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = dynamodb.get_item(
            TableName=keyed_table, Key={"pk": {"S": "txu"}, "sk": {"S": sk}}
        ).get("Item")
        return found

    put = {"Put": {"TableName": keyed_table, "Item": {"pk": {"S": "txu"}, "sk": {"S": "put"}}}}
    refused = {**update("cond")["Update"], "ConditionExpression": "attribute_exists(pk)"}
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=[put, update("one"), {"Update": refused}])
    codes = [reason["Code"] for reason in caught.value.response["CancellationReasons"]]
    assert codes == ["None", "None", "ConditionalCheckFailed"]
    assert [item("put"), item("one")] == [None, None]
    with pytest.raises(ClientError):  # n + 1 where n does not exist: the third action fails as it is written
        dynamodb.transact_write_items(TransactItems=[put, update("one"), update("two", "SET n = n + :n")])
    assert [item("put"), item("one"), item("two")] == [None, None, None]
    dynamodb.transact_write_items(TransactItems=[put, update("one")])
    assert item("put") is not None
    assert item("one") == {"pk": {"S": "txu"}, "sk": {"S": "one"}, "n": {"N": "1"}}
