"""How AWS errors are classified: what is worth retrying (transient) and what is not (permanent)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from daemon.aws import Aws, error_kind, translate
from daemon.errors import PermanentAwsError, TransientAwsError


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "op")


@pytest.mark.parametrize(
    ("service", "code", "status", "transient"),
    [
        ("secretsmanager", "LimitExceededException", 400, False),
        ("secretsmanager", "ThrottlingException", 400, True),
        ("secretsmanager", "InternalServiceError", 500, True),
        ("dynamodb", "LimitExceededException", 400, True),
        ("dynamodb", "ProvisionedThroughputExceededException", 400, True),
        ("sqs", "RequestThrottled", 403, True),
        ("sns", "Throttled", 429, True),
        ("secretsmanager", "ResourceNotFoundException", 400, False),
        ("dynamodb", "ValidationException", 400, False),
    ],
)
def test_errors_are_classified_by_service_and_code(service: str, code: str, status: int, transient: bool) -> None:
    """Throttles and 5xx are transient; Secrets Manager's LimitExceededException is a quota (AWS-FACTS §3)."""
    error = translate(service, "op", _client_error(code, status))
    assert isinstance(error, TransientAwsError if transient else PermanentAwsError)


def _cancelled(*codes: str) -> ClientError:
    response = {
        "Error": {"Code": "TransactionCanceledException", "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
        "CancellationReasons": [{"Code": code} for code in codes],
    }
    return ClientError(response, "TransactWriteItems")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error("ConditionalCheckFailedException"), "condition"),
        (_cancelled("None", "ConditionalCheckFailed"), "condition"),
        (_cancelled("ConditionalCheckFailed", "ValidationError"), "permanent"),
        (_cancelled("None", "TransactionConflict"), "permanent"),
        (_cancelled(), "permanent"),
        (_client_error("AccessDeniedException"), "permanent"),
        (_client_error("ValidationException"), "permanent"),
        (_client_error("ThrottlingException"), "transient"),
    ],
)
def test_a_false_condition_is_counted_apart_from_permanent_errors(error: ClientError, kind: str) -> None:
    """A duplicate or a lost race (condition false) is `condition`, so `permanent` means something is wrong."""
    assert error_kind(translate("dynamodb", "op", error)) == kind


class _OverQuotaSecretsManager:
    """A Secrets Manager client that answers every PutSecretValue with its quota error, without a network."""

    def __init__(self) -> None:
        self.attempts = 0

    async def put_secret_value(self, **params: Any) -> dict[str, Any]:
        self.attempts += 1
        raise _client_error("LimitExceededException")


async def test_a_secrets_manager_quota_error_is_not_retried() -> None:
    """PutSecretValue over a Secrets Manager quota fails after one attempt, not after 20 s of retries."""
    aws = Aws("us-east-1", max_attempts=5, max_retry_s=20)
    client = aws._clients["secretsmanager"] = _OverQuotaSecretsManager()  # not entered: no real client is made
    with pytest.raises(PermanentAwsError):
        await aws.call("secretsmanager", "put_secret_value", SecretId="s", SecretString="v")
    assert client.attempts == 1
