"""Reading and changing the world for remediation: the secret's state, its history since a failure, label moves.

Every call that changes a secret is here, each with the API reference's words for what it does, so a reviewer
can check the remediation paths against AWS in one place (AWS-FACTS §2).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from daemon.aws import Aws
from daemon.errors import PermanentAwsError
from daemon.events import RotationEvent, parse_secret_arn
from daemon.remediation.plan import Action, ActionKind
from daemon.remediation.state import CURRENT, PENDING, Aftermath, Failure, SecretState
from daemon.table import from_dynamo, secret_pk, to_dynamo, utc_iso

# How far before a failure its rotation's first RotationStarted may lie: Secrets Manager's retries of one rotation
# (each up to four 15-minute Lambda invocations) and the settle time stay well inside it.
HISTORY_LOOKBACK = timedelta(hours=12)
HISTORY_MAX_ITEMS = 2000  # one secret's items in that window: events, scan rows, remediation records


class World:
    """One replica's view of the secrets it remediates, and its hands on their labels."""

    def __init__(self, aws: Aws, table: str) -> None:
        self.aws = aws
        self.table = table
        self._account: str | None = None

    async def describe(self, secret_arn: str) -> SecretState:
        """DescribeSecret: labels, rotation settings, tags; a secret that is gone reads as such."""
        try:
            described = await self.aws.call("secretsmanager", "describe_secret", SecretId=secret_arn)
        except PermanentAwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return SecretState(exists=False, rotation_enabled=False)
            raise
        return SecretState.from_describe(described)

    async def aftermath(self, failure: Failure) -> Aftermath:
        """What the audit table knows of this rotation and what followed it (key-condition reads only)."""
        failed_at = utc_iso(failure.failed_at)
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk >= :since",
            "ExpressionAttributeValues": to_dynamo(
                {":pk": secret_pk(failure.secret_arn), ":since": utc_iso(failure.failed_at - HISTORY_LOOKBACK)}
            ),
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while len(items) < HISTORY_MAX_ITEMS:
            page = await self.aws.call("dynamodb", "query", **params)
            items.extend(from_dynamo(item) for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return Aftermath.from_history(items, failure, failed_at)

    async def trusted(self, event: RotationEvent, accounts: frozenset[str], regions: frozenset[str]) -> bool:
        """Only secrets of this account and region (and the allowed ones), by the event's and the ARN's word."""
        parsed = parse_secret_arn(event.secret_arn)
        if parsed is None:
            return False
        arn_region, arn_account, _ = parsed
        if self._account is None:
            self._account = str((await self.aws.call("sts", "get_caller_identity"))["Account"])
        return (
            {event.account, arn_account} == {self._account}
            and {event.region, arn_region} == {self.aws.region}
            and (not accounts or self._account in accounts)
            and (not regions or self.aws.region in regions)
        )

    async def carry_out(self, secret_arn: str, action: Action, *, restart_token: str) -> dict[str, Any]:
        """One immediate action; extra fields for its audit entry. Raises PermanentAwsError when AWS refuses."""
        if action.kind is ActionKind.HOLD:
            # "Each staging label can be attached to only one version at a time" (UpdateSecretVersionStage): the
            # held label is the version's own, so it strips nothing from another version.
            await self._stage(secret_arn, str(action.label), move_to=action.version_id)
        elif action.kind is ActionKind.REMOVE_PENDING:
            await self._stage(secret_arn, PENDING, remove_from=action.version_id)
        elif action.kind in (ActionKind.PROMOTE, ActionKind.ROLLBACK):
            # Moving AWSCURRENT needs RemoveFromVersionId (the version that has it); AWSPREVIOUS follows.
            await self._stage(secret_arn, CURRENT, move_to=action.move_to, remove_from=action.version_id)
        elif action.kind is ActionKind.RESTART_CONSUMERS:
            started = await self.aws.call(
                "ssm",
                "start_automation_execution",
                DocumentName=action.document,
                Parameters={"SecretArn": [secret_arn]},
                ClientToken=restart_token,
            )
            return {"execution_id": str(started.get("AutomationExecutionId", ""))}
        return {}

    async def rotate(self, secret_arn: str, token: str) -> None:
        """RotateSecret with a deterministic token: "If the AWSPENDING staging label is present but not attached to
        the same version as AWSCURRENT, then any later invocation of RotateSecret ... returns an error" (API
        reference): callers check that first. The caller also needs lambda:InvokeFunction on the function."""
        await self.aws.call(
            "secretsmanager", "rotate_secret", SecretId=secret_arn, ClientRequestToken=token, RotateImmediately=True
        )

    async def _stage(
        self, secret_arn: str, label: str, *, move_to: str | None = None, remove_from: str | None = None
    ) -> None:
        params: dict[str, Any] = {"SecretId": secret_arn, "VersionStage": label}
        if move_to is not None:
            params["MoveToVersionId"] = move_to
        if remove_from is not None:
            params["RemoveFromVersionId"] = remove_from
        await self.aws.call("secretsmanager", "update_secret_version_stage", **params)
