"""Access: a logging CloudTrail trail in the region, the task role's permissions, and the scan targets' roles.

The trail check is the daemon's own start-up check (`daemon.trail`). Permissions are asked of IAM's policy
simulator (`SimulatePrincipalPolicy`) for each action the daemon's code calls (`actions`), for the role given with
`--role-arn` or else the caller's own role when the caller is an assumed role (doctor run inside the task). The
scan roles are assumed with STS as the caller running doctor: a role whose trust admits only the task role fails
here though the daemon could assume it, so the fix says which.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from daemon.aws import Aws
from daemon.config import Config
from daemon.doctor.actions import OPTIONAL, needed
from daemon.doctor.resources import call_failed
from daemon.doctor.result import Check, failed, passed, skipped, warned
from daemon.errors import AwsError
from daemon.metrics import Metrics
from daemon.provision import principal_of
from daemon.trail import check_cloudtrail

_SIMULATE_BATCH = 100  # ActionNames per SimulatePrincipalPolicy call, to stay well inside the request size limit


async def check_trail(aws: Aws) -> Check:
    """trail.logging: `daemon.trail.check_cloudtrail`, which the daemon runs at start-up."""
    logging = await check_cloudtrail(aws, Metrics(CollectorRegistry()))
    if logging:
        return passed("trail.logging", f"a trail logs {aws.region}")
    fix = (
        f"create a trail that logs management events in {aws.region} (deploy/terraform: create_cloudtrail = true); "
        "without one no rotation event reaches EventBridge"
    )
    if logging is None:
        return warned("trail.logging", "could not read the trails' status (needs cloudtrail:GetTrailStatus)", fix)
    return failed("trail.logging", f"no trail logs {aws.region}", fix)


def role_to_check(role_arn: str, caller_arn: str) -> tuple[str, str]:
    """(role ARN, where it came from), or ("", why none): `--role-arn`, else the caller's assumed role."""
    if role_arn:
        return role_arn, "--role-arn"
    principal = principal_of(caller_arn)
    if ":role/" in principal:
        return principal, "the caller's role; pass --role-arn for the task role"
    return "", f"the caller ({caller_arn}) is not an assumed role and no --role-arn was given"


async def check_permissions(aws: Aws, config: Config, role_arn: str, origin: str) -> list[Check]:
    """iam.<action> for each action the daemon needs with this configuration: allowed, or which to grant."""
    if not role_arn:
        return [skipped("iam", f"{origin}: pass --role-arn (terraform output task_role_arn)")]
    wanted = needed(config)
    context: list[dict[str, Any]] = []
    if "=" in config.scan_tag:
        key, value = config.scan_tag.split("=", 1)
        context.append(
            {
                "ContextKeyName": f"secretsmanager:ResourceTag/{key}",
                "ContextKeyValues": [value],
                "ContextKeyType": "string",
            }
        )
    names = sorted(wanted)
    results: list[dict[str, Any]] = []
    try:
        for start in range(0, len(names), _SIMULATE_BATCH):
            params: dict[str, Any] = {
                "PolicySourceArn": role_arn,
                "ActionNames": names[start : start + _SIMULATE_BATCH],
            }
            if context:
                params["ContextEntries"] = context
            simulated = await aws.call("iam", "simulate_principal_policy", **params)
            results.extend(simulated.get("EvaluationResults", []))
    except AwsError as exc:
        return [call_failed("iam", exc, f"simulating {role_arn}", "check --role-arn names the task role")]
    checks = []
    for result in results:
        action, decision = str(result["EvalActionName"]), str(result["EvalDecision"])
        name, feature = f"iam.{action}", wanted.get(action, "core")
        missing_context = result.get("MissingContextValues") or []
        if decision == "allowed":
            checks.append(passed(name, f"{role_arn.rsplit('/', 1)[-1]} ({feature})"))
        elif action in OPTIONAL:
            detail = f"{decision}; needed only if a secret names a restart automation document"
            checks.append(warned(name, detail, "if one does, grant it (deploy/terraform: automation_document_arns)"))
        elif missing_context and decision == "implicitDeny":
            keys = ", ".join(str(key) for key in missing_context)
            checks.append(warned(name, f"allowed only under conditions doctor cannot supply ({keys})"))
        else:
            fix = f"grant {action} to {role_arn} (the {feature} feature calls it; deploy/terraform/iam.tf has it)"
            checks.append(failed(name, f"{decision} for {role_arn} ({origin})", fix))
    return checks


async def check_scan_roles(aws: Aws, config: Config, caller_arn: str) -> list[Check]:
    """scan.role.<account>: each scan target's role can be assumed (as the caller running doctor)."""
    roles = [target.role_arn for target in config.scan_targets if target.role_arn]
    if not config.scan_enabled or not roles:
        return [skipped("scan.roles", "no scan target names a role")]
    checks = []
    for role in dict.fromkeys(roles):
        name = f"scan.role.{role.split(':')[4] if role.count(':') >= 5 else role}"
        try:
            await aws.call("sts", "assume_role", RoleArn=role, RoleSessionName="rotaudit-doctor", DurationSeconds=900)
        except AwsError as exc:
            fix = (
                f"let the task role (and, to check from here, {principal_of(caller_arn)}) assume {role}: "
                "its trust policy must name them, and the task role needs sts:AssumeRole on it"
            )
            checks.append(failed(name, f"AssumeRole {role}: {exc.code}", fix))
            continue
        checks.append(passed(name, role))
    return checks
