"""A small stand-in for IAM's evaluation of an SQS queue policy, for what the emulator never checks (AWS-FACTS §7).

moto enforces no IAM, so a forged `SendMessage` always lands there. This evaluates the one request shape that
matters — `sqs:SendMessage` to a queue in the same account — as the IAM policy evaluation logic documents it: an
explicit Deny in any policy wins; otherwise an Allow in the queue policy or in the caller's identity policy admits
it. Only the condition operators our policies use are implemented (ArnEquals, ArnNotEquals, ArnNotLike), with
IAM's rule for a key the request does not carry (condition operators reference: "If the key that you specify in a
policy condition is not present in the request context, the values do not match and the condition is false. If the
policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key is
not present, the condition is true").
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SendRequest:
    """Who sends: a service principal (EventBridge) with the rule as source, or an IAM principal of the account."""

    service: str | None = None
    source_arn: str | None = None
    principal_arn: str | None = None
    identity_allows: bool = False  # the caller's own IAM policy grants sqs:SendMessage (same account)


def allowed(policy: dict[str, Any], request: SendRequest, queue_arn: str) -> bool:
    """Whether `request` may SendMessage to `queue_arn` under the queue's resource `policy`."""
    matching = [s for s in policy["Statement"] if _applies(s, request, queue_arn)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return request.identity_allows or any(s["Effect"] == "Allow" for s in matching)


def _applies(statement: dict[str, Any], request: SendRequest, queue_arn: str) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    if "sqs:SendMessage" not in actions and "sqs:*" not in actions:
        return False
    if statement["Resource"] not in (queue_arn, "*"):
        return False
    if not _principal_matches(statement["Principal"], request):
        return False
    context = {"aws:SourceArn": request.source_arn, "aws:PrincipalArn": request.principal_arn}
    return all(
        _condition(operator, context.get(key), values if isinstance(values, list) else [values])
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


def _principal_matches(principal: Any, request: SendRequest) -> bool:
    if principal == "*" or principal == {"AWS": "*"}:
        return True
    if isinstance(principal, dict) and "Service" in principal:
        services = principal["Service"] if isinstance(principal["Service"], list) else [principal["Service"]]
        return request.service in services
    return False


def _condition(operator: str, value: str | None, wanted: list[str]) -> bool:
    if operator == "ArnEquals":
        return value is not None and value in wanted
    if operator == "ArnNotEquals":
        return value is None or value not in wanted
    if operator == "ArnNotLike":
        return value is None or not any(fnmatch.fnmatchcase(value, pattern) for pattern in wanted)
    raise NotImplementedError(operator)
