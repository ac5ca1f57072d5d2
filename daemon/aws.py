"""The only place AWS clients are created and AWS errors are translated.

`Aws.call(service, operation, **params)` runs one API call with bounded, jittered retries on transient
errors, counts it, and turns botocore/aiohttp failures into `TransientAwsError` / `PermanentAwsError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentialResolver, AioDeferredRefreshableCredentials, AioRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProfileNotFound,
    ReadTimeoutError,
)
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from daemon.errors import AwsError, PermanentAwsError, TransientAwsError
from daemon.metrics import Metrics

SERVICES = ("sqs", "dynamodb", "sns", "events", "secretsmanager", "sts", "ssm", "ecs", "cloudtrail", "securityhub")
HOT_SERVICES = frozenset({"sqs", "dynamodb"})  # one call or more per message

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "Throttled",  # SNS (ThrottledException, HTTP 429)
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        "TransactionConflictException",
        "KMS.ThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# Codes a service uses for what retrying cannot fix. Secrets Manager's LimitExceededException means a quota (too
# many versions, secrets, ...), not a throttle (AWS-FACTS §3): retried, it only cost 20 s before failing anyway.
PERMANENT_CODES_BY_SERVICE = {"secretsmanager": frozenset({"LimitExceededException"})}
_NETWORK_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectTimeoutError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
)


def translate(service: str, operation: str, exc: BaseException) -> AwsError:
    """Turn a botocore/aiohttp exception into our tree. The message never includes request parameters."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))[:300]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        transient = code in TRANSIENT_CODES or status >= 500 or status == 429  # 429: too many requests
        transient = transient and code not in PERMANENT_CODES_BY_SERVICE.get(service, frozenset())
        cls = TransientAwsError if transient else PermanentAwsError
        err: AwsError = cls(service, operation, code, message)
        err.details = {k: v for k, v in exc.response.items() if k not in ("Error", "ResponseMetadata")}
        return err
    if isinstance(exc, _NETWORK_ERRORS):
        return TransientAwsError(service, operation, type(exc).__name__, str(exc)[:300])
    if isinstance(exc, BotoCoreError):
        return PermanentAwsError(service, operation, type(exc).__name__, str(exc)[:300])
    return PermanentAwsError(service, operation, type(exc).__name__, str(exc)[:300])


def error_kind(err: AwsError) -> str:
    """The `kind` label of rotaudit_aws_errors_total: `transient`, `permanent`, or `condition` — a conditional
    write whose condition was false (a duplicate, a race lost to another replica): an expected outcome, counted
    apart so that `permanent` (a missing permission, a bad request) is worth an alert."""
    if isinstance(err, TransientAwsError):
        return "transient"
    if err.code == "ConditionalCheckFailedException":
        return "condition"
    reasons = err.details.get("CancellationReasons")
    if err.code == "TransactionCanceledException" and isinstance(reasons, list):
        codes = {str(reason.get("Code", "None")) for reason in reasons if isinstance(reason, dict)}
        if codes and codes <= {"None", "ConditionalCheckFailed"}:
            return "condition"
    return "permanent"


class Aws:
    """Async AWS clients for one region/endpoint, opened with `async with`."""

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str = "",
        metrics: Metrics | None = None,
        max_attempts: int = 5,
        max_retry_s: float = 20.0,
        pool_size: int = 64,
        read_timeout_s: float = 40.0,
        services: tuple[str, ...] = SERVICES,
        credentials: Mapping[str, str] | AioRefreshableCredentials | None = None,
        profile: str = "",
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url or None
        # A named profile of the AWS config files (`--profile`); "" leaves botocore's default (AWS_PROFILE, else
        # `default`). Given credentials take precedence over it, as they do in botocore.
        self.profile = profile
        self.metrics = metrics if metrics is not None else Metrics()
        self.max_attempts = max_attempts
        self.max_retry_s = max_retry_s
        self._services = services
        # Fixed keys (aws_access_key_id, aws_secret_access_key, aws_session_token), or credentials that renew
        # themselves (`refreshing_credentials`: an assumed role in another account); None means the default chain.
        # Never logged.
        self._keys = dict(credentials) if isinstance(credentials, Mapping) else {}
        self._refreshing = credentials if isinstance(credentials, AioRefreshableCredentials) else None
        self._config = AioConfig(
            connect_timeout=5,
            read_timeout=read_timeout_s,
            max_pool_connections=pool_size,
            retries={"max_attempts": 0, "mode": "standard"},  # retries are ours: one policy, counted
        )
        # The hot path's services skip botocore's client-side parameter validation: it was the largest CPU cost
        # per event in a profile (a recursive walk of every TransactWriteItems request), and AWS validates
        # the same parameters server-side, answering with a permanent ValidationException.
        self._hot_config = self._config.merge(AioConfig(parameter_validation=False))
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}

    async def __aenter__(self) -> Aws:
        session = AioSession(profile=self.profile or None)
        if self._refreshing is not None:
            session.register_component("credential_provider", AioCredentialResolver([_Given(self._refreshing)]))
        for service in self._services:
            self._clients[service] = await self._stack.enter_async_context(
                session.create_client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=self._hot_config if service in HOT_SERVICES else self._config,
                    **self._keys,
                )
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()
        self._clients.clear()

    def client(self, service: str) -> Any:
        """The raw client, for paginators. Prefer `call`."""
        return self._clients[service]

    async def call_once(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """One attempt, counted, errors translated. For calls that must not be repeated (ECS UpdateService).

        `service` and `operation` are positional-only, so an operation's own `service` parameter passes in `params`.
        """
        method = getattr(self._clients[service], operation)
        self.metrics.aws_calls.labels(service, operation).inc()
        try:
            result: dict[str, Any] = await method(**params)
        except (ClientError, BotoCoreError, *_NETWORK_ERRORS) as exc:
            err = translate(service, operation, exc)
            self.metrics.aws_errors.labels(service, operation, error_kind(err)).inc()
            raise err from None
        return result

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """The call with bounded, jittered retries on transient errors."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientAwsError),
            wait=wait_random_exponential(multiplier=0.1, max=5),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_retry_s),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.call_once(service, operation, **params)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


class Caller(Protocol):
    """What `query_pages` needs of `Aws` (a stand-in in tests will do)."""

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]: ...


async def query_pages(aws: Caller, **params: Any) -> AsyncIterator[dict[str, Any]]:
    """Every page of a DynamoDB `Query` with `params`, following `LastEvaluatedKey` until there is none."""
    while True:
        page = await aws.call("dynamodb", "query", **params)
        yield page
        start = page.get("LastEvaluatedKey")
        if not start:
            return
        params = {**params, "ExclusiveStartKey": start}


def profile_region(profile: str = "") -> str:
    """The region a profile of the AWS config files sets ('' when none), as the AWS CLI reads it.

    `profile` "" means botocore's default profile (AWS_PROFILE, else `default`). Only the files are read here, no
    network. Raises ValueError naming the profile when the config files have no such profile.
    """
    session = AioSession(profile=profile or None)
    try:
        return str(session.get_scoped_config().get("region") or "")
    except ProfileNotFound:
        raise ValueError(f"profile {session.profile!r} not found in the AWS config files") from None


# -- credentials that renew themselves ----------------------------------------------------------------------

CredentialsFetch = Callable[[], Awaitable[dict[str, str]]]


def refreshing_credentials(
    fetch: CredentialsFetch, *, clock: Callable[[], datetime] | None = None
) -> AioRefreshableCredentials:
    """Credentials that call `fetch` on first use and again before they expire.

    `fetch` returns `access_key`, `secret_key`, `token` and `expiry_time` (ISO-8601). botocore refreshes 15 minutes
    before expiry (and must, at 10): an assumed-role session reached by role chaining lasts at most an hour
    (AWS-FACTS §3), so a long-lived process holding fixed keys would start failing after it. Share one object among
    the clients of one role: they then assume it once per session, not once each.
    """
    return AioDeferredRefreshableCredentials(
        refresh_using=fetch, method="assume-role", time_fetcher=clock or (lambda: datetime.now(UTC))
    )


class _Given:
    """A credential chain of one link, the credentials it is given (botocore's provider interface: METHOD, load)."""

    METHOD = "rotaudit-given"

    def __init__(self, credentials: AioRefreshableCredentials) -> None:
        self._credentials = credentials

    async def load(self) -> AioRefreshableCredentials:
        return self._credentials


# -- errors an operator can act on ------------------------------------------------------------------------

_NOT_FOUND = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "ResourceNotFoundException"})
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "KMS.AccessDeniedException"})


def iam_action(service: str, operation: str) -> str:
    """The IAM action an operation needs: sqs send_message_batch -> sqs:SendMessage."""
    name = "".join(part.capitalize() for part in operation.split("_"))
    return f"{service}:{name.removesuffix('Batch') if service == 'sqs' else name}"


_NO_CREDENTIALS = frozenset({"NoCredentialsError", "PartialCredentialsError"})


def explains(exc: AwsError) -> bool:
    """Whether `explain` knows what to do about this error (else it only repeats it)."""
    return exc.code in _DENIED | _NOT_FOUND | _NO_CREDENTIALS


def explain(exc: AwsError, what: str, fix: str = "") -> str:
    """`what` failed, why, and what to change; never a payload."""
    if exc.code in _NO_CREDENTIALS:
        return (
            f"{what}: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile "
            f"that has them with --profile or AWS_PROFILE (a named profile ignores the environment's keys) ({exc.code})"
        )
    if exc.code in _DENIED:
        return f"{what}: permission missing: grant {iam_action(exc.service, exc.operation)} to this caller ({exc.code})"
    if exc.code in _NOT_FOUND:
        return f"{what} not found: {fix or 'check the URL and AWS_REGION'} ({exc.code})"
    return f"{what}: {exc}"
