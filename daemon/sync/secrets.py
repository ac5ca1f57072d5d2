"""A sync pair's secrets in Secrets Manager: read the source and the target, and write the target conditionally.

The write (`PairSecrets.write`) holds across replicas, which a per-process lock cannot: the new version goes in
unstaged, under SYNC_LABEL; AWSCURRENT moves onto it only while the source's AWSCURRENT is still the version this
sync read, and with `RemoveFromVersionId` = the target version it read, which AWS refuses once the label has moved
off it. So a replica that stalled on an old source version can never put an older password over a newer one.
Values are read and written here only: errors name operations, codes and fields, never values.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TypedDict

from daemon.aws import Aws
from daemon.config_values import SyncPair
from daemon.errors import AwsError, PermanentAwsError, RotauditError

CURRENT = "AWSCURRENT"
SYNC_LABEL = "ROTAUDIT_SYNC"  # a sync's new version, staged until AWSCURRENT moves onto it (then kept: one at a time)


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret as one sync read it: its AWSCURRENT version ("" when none) and value (never in a repr)."""

    arn: str
    name: str
    version_id: str
    value: str | None = field(repr=False)


class Ids(TypedDict, total=False):
    """What a sync result says about the secrets: ARNs, names and version ids."""

    source_arn: str
    source_version_id: str
    target_arn: str
    target_name: str
    target_version_id: str


class SyncFailed(RotauditError):
    """One pair's sync cannot go on: out of this module and `Syncer._sync`; `Syncer.sync_pair` returns it as an
    `error` result, so it never escapes the sync feature."""

    def __init__(self, reason: str, detail: str, ids: Ids | None = None) -> None:
        super().__init__(reason)
        self.reason, self.detail, self.ids = reason, detail, ids or Ids()


class PairSecrets:
    """Reads and conditional writes of sync pairs' secrets, through one `Aws`."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    async def read_source(self, pair: SyncPair) -> Secret:
        """The source's AWSCURRENT version and value."""
        try:
            # AWSCURRENT named although it is the default: moto's GetSecretValue without a stage keeps returning the
            # version AWSCURRENT was on before an UpdateSecretVersionStage moved it; AWS (and this) read the label.
            got = await self.aws.call("secretsmanager", "get_secret_value", SecretId=pair.source, VersionStage=CURRENT)
        except PermanentAwsError as exc:
            if exc.code == "ResourceNotFoundException":
                raise SyncFailed("source_not_found", "no source secret with an AWSCURRENT value") from None
            raise SyncFailed("aws_error", code_of(exc)) from None
        return Secret(str(got["ARN"]), str(got["Name"]), str(got["VersionId"]), got.get("SecretString"))

    async def read_target(self, pair: SyncPair, source: Secret) -> Secret:
        """The target and its AWSCURRENT version: id "" and value None when it has none yet."""
        try:
            described = await self.aws.call("secretsmanager", "describe_secret", SecretId=pair.target)
        except PermanentAwsError as exc:
            reason = "target_not_found" if exc.code == "ResourceNotFoundException" else "aws_error"
            raise SyncFailed(reason, code_of(exc), ids_of(source)) from None
        stages: dict[str, list[str]] = described.get("VersionIdsToStages") or {}
        current = next((version for version, labels in stages.items() if CURRENT in labels), "")
        target = Secret(str(described["ARN"]), str(described["Name"]), current, None)
        if described.get("DeletedDate"):
            raise SyncFailed("target_not_found", "target is scheduled for deletion", ids_of(source, target))
        if not current:
            return target
        try:
            got = await self.aws.call("secretsmanager", "get_secret_value", SecretId=target.arn, VersionId=current)
        except PermanentAwsError as exc:
            raise SyncFailed("aws_error", code_of(exc), ids_of(source, target)) from None
        if got.get("SecretString") is None:
            raise SyncFailed("target_unparseable", "target holds SecretBinary", ids_of(source, target))
        return Secret(target.arn, target.name, current, str(got["SecretString"]))

    async def write(self, source: Secret, target: Secret, token: str, value: str, ids: Ids) -> bool:
        """Write `value` as the target's AWSCURRENT only if neither secret moved since this sync read them.

        Another replica (or a sync of the same pair after the source rotated again) may write the same target at
        the same time, and a per-process lock cannot stop it. So the new version is put *unstaged* (under
        SYNC_LABEL, not AWSCURRENT), the source's AWSCURRENT is read again, and AWSCURRENT is moved with
        `RemoveFromVersionId` = the version this sync read, which AWS refuses when the label has moved off it
        (API reference, UpdateSecretVersionStage.RemoveFromVersionId). False: something moved, nothing changed.
        """
        try:
            put = await self.aws.call(
                "secretsmanager",
                "put_secret_value",
                SecretId=target.arn,
                SecretString=value,
                ClientRequestToken=token,
                VersionStages=[SYNC_LABEL],
            )
            if CURRENT in put.get("VersionStages", []):
                return True  # the target's first version: Secrets Manager makes it AWSCURRENT itself
            if await self.current_version(source.arn) != source.version_id:
                await self.unstage(target.arn, token)
                return False  # the source rotated again: a newer password is due, never this one
            move = {"RemoveFromVersionId": target.version_id} if target.version_id else {}
            await self.aws.call(
                "secretsmanager",
                "update_secret_version_stage",
                SecretId=target.arn,
                VersionStage=CURRENT,
                MoveToVersionId=token,
                **move,
            )
        except PermanentAwsError as exc:
            if exc.operation == "update_secret_version_stage" and exc.code == "InvalidParameterException":
                if await self.current_version(target.arn) == token:
                    return True  # this sync's own move, retried after its answer was lost
                await self.unstage(target.arn, token)
                return False  # another writer moved AWSCURRENT since this sync read the target
            reason = "version_conflict" if exc.code == "ResourceExistsException" else "aws_error"
            raise SyncFailed(reason, code_of(exc), ids) from None
        return True

    async def current_version(self, secret_arn: str) -> str:
        """The version AWSCURRENT is on now (DescribeSecret: no value is read)."""
        described = await self.aws.call("secretsmanager", "describe_secret", SecretId=secret_arn)
        stages: dict[str, list[str]] = described.get("VersionIdsToStages") or {}
        return next((version for version, labels in stages.items() if CURRENT in labels), "")

    async def unstage(self, target_arn: str, token: str) -> None:
        """Take SYNC_LABEL off a version that lost the race, so Secrets Manager may delete it (no label left);
        refused, harmlessly, when a later write has moved the label on already."""
        with contextlib.suppress(PermanentAwsError):
            await self.aws.call(
                "secretsmanager",
                "update_secret_version_stage",
                SecretId=target_arn,
                VersionStage=SYNC_LABEL,
                RemoveFromVersionId=token,
            )


def ids_of(source: Secret, target: Secret | None = None) -> Ids:
    if target is None:
        return Ids(source_arn=source.arn, source_version_id=source.version_id)
    return Ids(
        source_arn=source.arn,
        source_version_id=source.version_id,
        target_arn=target.arn,
        target_name=target.name,
        target_version_id=target.version_id,
    )


def code_of(exc: AwsError) -> str:
    """An AWS failure as operation and code only: AWS's message text is not ours to vouch for."""
    return f"{exc.service}.{exc.operation}: {exc.code}"
