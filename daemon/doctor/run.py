"""Run every doctor check in order, each group given what the earlier ones found."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.aws import Aws
from daemon.config import Config
from daemon.doctor import access, probe, resources, routing
from daemon.doctor.result import Check, failed, passed
from daemon.errors import AwsError

# The AWS services doctor calls (`Aws(services=...)`).
SERVICES = ("sqs", "dynamodb", "sns", "events", "cloudtrail", "iam", "sts")


@dataclass(frozen=True, slots=True)
class Options:
    """What the command line adds to the settings."""

    table: str = ""
    prefix: str = "rotaudit"
    role_arn: str = ""
    probe: bool = False
    probe_timeout_s: float = 60.0


async def diagnose(aws: Aws, config: Config, options: Options) -> list[Check]:
    """Every check's result; AWS errors become failed checks, never exceptions."""
    checks = [passed("config", "settings valid")]
    try:
        caller = str((await aws.call("sts", "get_caller_identity"))["Arn"])
    except AwsError as exc:
        fix = "check AWS credentials and AWS_REGION (aws sts get-caller-identity)"
        return [*checks, failed("aws.credentials", str(exc), fix)]
    account = caller.split(":")[4]
    checks.append(passed("aws.credentials", caller))
    found = resources.Found()
    checks += await resources.check_queues(aws, config.queue_url, config.dlq_url, found)
    retention = config.remediation_mode != "off"
    checks += await resources.check_table(aws, options.table or config.audit_table, retention=retention, found=found)
    checks.append(await resources.check_topic(aws, config.sns_topic_arn))
    rule_checks, _ = await routing.check_rules(aws, found, prefix=options.prefix, account=account)
    checks += rule_checks
    checks.append(await access.check_trail(aws))
    role_arn, origin = access.role_to_check(options.role_arn, caller)
    checks += await access.check_permissions(aws, config, role_arn, origin)
    checks += await access.check_scan_roles(aws, config, caller)
    if options.probe:
        table = options.table or config.audit_table
        checks += await probe.check_probe(
            aws, found, prefix=options.prefix, table=table, timeout_s=options.probe_timeout_s
        )
    return checks
