"""Pure: does a queue's resource policy let EventBridge deliver a rule's events? (IAM evaluation, our subset.)

The request is EventBridge's delivery: principal `events.amazonaws.com`, `sqs:SendMessage` on the queue,
`aws:SourceArn` = the rule, `aws:SourceAccount` = the rule's account, and no `aws:PrincipalArn` (a service
principal's request does not carry one). IAM policy evaluation logic: an explicit Deny wins; otherwise an Allow
admits. A condition key missing from the request makes a positive operator false and a negated one (`...Not...`)
true (IAM condition operators reference). Operators outside the set below make the answer "unknown", never a guess.
"""

from __future__ import annotations

import enum
import fnmatch
import json
from collections.abc import Callable
from typing import Any

EVENTS_PRINCIPAL = "events.amazonaws.com"


class Verdict(enum.StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"  # an explicit Deny applies
    NOT_ALLOWED = "not_allowed"  # no Allow applies
    UNKNOWN = "unknown"  # a statement uses something this evaluator does not implement


class _Unknown(Exception):
    """A statement this evaluator cannot decide."""


def _equals(value: str, wanted: str) -> bool:
    return value == wanted


def _like(value: str, wanted: str) -> bool:
    return fnmatch.fnmatchcase(value, wanted)


def _ignore_case(value: str, wanted: str) -> bool:
    return value.lower() == wanted.lower()


_POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _equals,
    "StringLike": _like,
    "StringEqualsIgnoreCase": _ignore_case,
    "ArnEquals": _like,  # ARN operators take wildcards, ArnEquals included
    "ArnLike": _like,
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition(operator: str, value: str | None, wanted: list[Any]) -> bool:
    if operator.endswith("IfExists") and value is None:
        return True
    operator = operator.removesuffix("IfExists")
    if operator in _POSITIVE:
        return value is not None and any(_POSITIVE[operator](value, str(w)) for w in wanted)
    if operator in _NEGATED:
        return value is None or not any(_POSITIVE[_NEGATED[operator]](value, str(w)) for w in wanted)
    if operator == "Null":
        return all((value is None) == (str(w).lower() == "true") for w in wanted)
    raise _Unknown(operator)


def _principal_matches(principal: Any) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        raise _Unknown("Principal")
    if "*" in _as_list(principal.get("AWS", [])):
        return True
    return EVENTS_PRINCIPAL in _as_list(principal.get("Service", []))


def _applies(statement: dict[str, Any], queue_arn: str, context: dict[str, str | None]) -> bool:
    if "NotAction" in statement or "NotResource" in statement or "NotPrincipal" in statement:
        raise _Unknown("NotAction/NotResource/NotPrincipal")
    if not any(_like("sqs:sendmessage", str(a).lower()) for a in _as_list(statement.get("Action", []))):
        return False
    if not any(_like(queue_arn, str(r)) for r in _as_list(statement.get("Resource", []))):
        return False
    if not _principal_matches(statement.get("Principal")):
        return False
    return all(
        _condition(operator, context.get(key.lower()), _as_list(values))
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


def delivery_verdict(policy_text: str | None, queue_arn: str, rule_arn: str) -> Verdict:
    """Whether the queue policy (`Policy` attribute, JSON or None) lets EventBridge deliver `rule_arn`'s events."""
    if not policy_text:
        return Verdict.NOT_ALLOWED
    try:
        statements = _as_list(json.loads(policy_text).get("Statement", []))
    except (ValueError, AttributeError):
        return Verdict.UNKNOWN
    account = rule_arn.split(":")[4] if rule_arn.count(":") >= 5 else None
    context: dict[str, str | None] = {"aws:sourcearn": rule_arn, "aws:sourceaccount": account}
    allowed = False
    try:
        for statement in statements:
            if _applies(statement, queue_arn, context):
                if statement.get("Effect") == "Deny":
                    return Verdict.DENIED
                allowed = allowed or statement.get("Effect") == "Allow"
    except _Unknown:
        return Verdict.UNKNOWN
    return Verdict.ALLOWED if allowed else Verdict.NOT_ALLOWED
