"""Clients for the scan's scopes: the daemon's own, or a role in another account whose session is renewed in time.

A role is assumed through STS on first use and again before its session expires (`daemon.aws.refreshing_credentials`;
role chaining caps the session at one hour, AWS-FACTS §3), so a scan that outlasts a session, or a daemon that runs
for days, keeps working. One renewing set of credentials per role serves every region and every run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from aiobotocore.credentials import AioRefreshableCredentials

from daemon.aws import Aws, refreshing_credentials
from daemon.scan.rules import Scope, as_utc
from daemon.timer import Clock, utc_now

ROLE_SESSION_S = 3600  # the most a chained role session may last
ROLE_SESSION_NAME = "rotaudit-scan"
Connect = Callable[[str, AioRefreshableCredentials | None], AbstractAsyncContextManager[Aws]]


class ScopeClients:
    """Opens the client a scope is listed with: the home client, one for another region, or one for a role."""

    def __init__(self, aws: Aws, *, connect: Connect | None = None, clock: Clock = utc_now) -> None:
        self.aws = aws
        self.connect = connect or self._connect
        self.clock = clock
        self._roles: dict[str, AioRefreshableCredentials] = {}

    def open(self, scope: Scope) -> AbstractAsyncContextManager[Aws]:
        if not scope.role_arn:
            return nullcontext(self.aws) if scope.region == self.aws.region else self.connect(scope.region, None)
        if scope.role_arn not in self._roles:
            self._roles[scope.role_arn] = refreshing_credentials(self._assumer(scope.role_arn), clock=self.clock)
        return self.connect(scope.region, self._roles[scope.role_arn])

    def _assumer(self, role_arn: str) -> Callable[[], Any]:
        async def assume() -> dict[str, str]:
            assumed = await self.aws.call(
                "sts",
                "assume_role",
                RoleArn=role_arn,
                RoleSessionName=ROLE_SESSION_NAME,
                DurationSeconds=ROLE_SESSION_S,
            )
            creds = assumed["Credentials"]
            expiry = as_utc(creds["Expiration"])
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": (expiry or self.clock()).isoformat(),
            }

        return assume

    def _connect(self, region: str, credentials: AioRefreshableCredentials | None) -> AbstractAsyncContextManager[Aws]:
        return Aws(
            region,
            endpoint_url=self.aws.endpoint_url or "",
            metrics=self.aws.metrics,
            max_attempts=self.aws.max_attempts,
            services=("secretsmanager",),
            credentials=credentials,
            profile=self.aws.profile,
        )
