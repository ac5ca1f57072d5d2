"""The IAM actions the daemon needs, derived from its own code: every AWS call it can make, mapped to IAM actions.

The daemon's code is what `daemon.app` imports (directly or not): the CLI, `provision`, `emit` and the DLQ tools
run with an operator's credentials, not the task role. In that code every `<aws>.call(service, operation, ...)` and
`<aws>.call_once(...)` is found by walking the syntax tree, and so is a call of a `daemon.aws` helper that makes one
fixed call (`query_pages`: a DynamoDB Query); an operation passed through a helper's parameter is followed to the
helper's callers in the same module. Each call belongs to the feature of the package it is in
(`daemon/scan/` → scan, ...; anything flat in `daemon/` → core).

Each operation maps to its IAM action by botocore's model (`send_message_batch` → `sqs:SendMessageBatch`), then
through the exceptions below, which say what AWS documents: SQS batches authorize as the single action, a
`TransactWriteItems` as the actions of its parts, `RotateSecret` also needs `lambda:InvokeFunction`,
`GetCallerIdentity` needs nothing. A new call in the code is picked up without touching this module; only a new
*kind* of exception needs a line here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from tests.support import ROOT

PACKAGE = ROOT / "daemon"
ENTRY = "daemon.app"  # the daemon: what `rotaudit run` starts
FEATURES = ("remediation", "scan", "sync", "dlq", "findings", "failures")
IAM_PREFIX = {"events": "events"}  # service name → IAM prefix where they differ (none of ours do today)

# An operation whose IAM action is not just "<prefix>:<Operation>" (AWS documentation for each):
# - SQS batch actions are authorized as the single action (SQS developer guide, "Amazon SQS batch actions").
# - TransactWriteItems is authorized per item as the item's own action (DynamoDB developer guide, "IAM with
#   transactions"): see TRANSACT_PARTS.
# - RotateSecret: "You also need lambda:InvokeFunction permissions on the rotation function" (API reference).
# - GetCallerIdentity: "No permissions are required to perform this operation" (STS API reference).
ACTION_EXCEPTIONS: dict[str, frozenset[str]] = {
    "sqs:SendMessageBatch": frozenset({"sqs:SendMessage"}),
    "sqs:DeleteMessageBatch": frozenset({"sqs:DeleteMessage"}),
    "sqs:ChangeMessageVisibilityBatch": frozenset({"sqs:ChangeMessageVisibility"}),
    "secretsmanager:RotateSecret": frozenset({"secretsmanager:RotateSecret", "lambda:InvokeFunction"}),
    "sts:GetCallerIdentity": frozenset(),
    "dynamodb:TransactWriteItems": frozenset(),  # only its parts: see TRANSACT_PARTS
}
TRANSACT_PARTS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}

# Actions a feature's code holds but a deployment only needs in some configurations (Deployment below).
WRITES_ON_SECRETS = frozenset({"secretsmanager:UpdateSecretVersionStage", "secretsmanager:RotateSecret"})
# KMS behind a customer-managed key (API references: GetSecretValue needs kms:Decrypt; PutSecretValue
# kms:GenerateDataKey and kms:Decrypt; SNS Publish to an encrypted topic and DynamoDB on a customer key the same).
SECRETS_KMS = {
    "secretsmanager:GetSecretValue": frozenset({"kms:Decrypt"}),
    "secretsmanager:PutSecretValue": frozenset({"kms:GenerateDataKey", "kms:Decrypt"}),
}
STACK_KMS = frozenset({"kms:Decrypt", "kms:GenerateDataKey"})

# The audit table's partitions each feature updates or deletes in (dynamodb:LeadingKeys), as IAM StringLike
# patterns. tests/emulator/test_iam_partitions.py records the partitions the real code writes and holds them to this.
LEADING_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "scan": {"dynamodb:UpdateItem": ("lease#scan", "rollup#*")},
    "remediation": {
        "dynamodb:UpdateItem": ("remediation#*", "notify#*"),
        "dynamodb:DeleteItem": ("remediation-due", "notify#*"),
    },
    "failures": {"dynamodb:DeleteItem": ("failures-open",)},
}


@dataclass(frozen=True)
class AwsCall:
    """One call site: where, which feature, the service and operation, and a transaction's part kinds."""

    module: str
    line: int
    feature: str
    service: str
    operation: str
    parts: frozenset[str] = frozenset()

    @property
    def actions(self) -> frozenset[str]:
        return iam_actions(self.service, self.operation, self.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, tree: ast.AST) -> set[str]:
    known = modules()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {target for target in found if target in known and target != name}


def daemon_modules(entry: str = ENTRY) -> set[str]:
    """Every package module the daemon imports, at import time or lazily, starting from `entry`."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_imports(name, ast.parse(modules()[name].read_text())))
    return seen


def feature_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in FEATURES else "core"


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _transaction_parts(tree: ast.AST) -> frozenset[str]:
    """The kinds of transaction item the module builds: dict literals keyed "Put", "Update", "Delete", ..."""
    return frozenset(
        key.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and key.value in TRANSACT_PARTS
    )


# Helpers of `daemon.aws` that make one fixed call for their caller: the call is the caller's feature's.
HELPERS = {"query_pages": ("dynamodb", "query")}


def calls_in_source(module: str, source: str) -> list[AwsCall]:
    """Every AWS call site in one module's source (see the module docstring); raises on one it cannot resolve."""
    tree = ast.parse(source)
    parents: dict[ast.AST, ast.AST] = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    parts = _transaction_parts(tree)
    found: list[AwsCall] = []
    for node in ast.walk(tree):
        helper = HELPERS.get(node.func.id) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
        if helper is not None:
            found.append(AwsCall(module, node.lineno, feature_of(module), *helper, frozenset()))
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("call", "call_once") or len(node.args) < 2:
            continue
        service = _literal(node.args[0])
        if service is None:
            continue
        for operation in _operations(node.args[1], node, parents, functions, tree):
            call_parts = parts if operation == "transact_write_items" else frozenset()
            found.append(AwsCall(module, node.lineno, feature_of(module), service, operation, call_parts))
    return found


def _operations(
    arg: ast.AST,
    call: ast.Call,
    parents: dict[ast.AST, ast.AST],
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
    tree: ast.AST,
) -> list[str]:
    """The operation names an argument can hold: a literal, or a parameter followed to its callers' literals."""
    literal = _literal(arg)
    if literal is not None:
        return [literal]
    if not isinstance(arg, ast.Name):
        raise ValueError(f"line {call.lineno}: the operation is neither a literal nor a parameter")
    function = parents.get(call)
    while function is not None and not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
        function = parents.get(function)
    if function is None:
        raise ValueError(f"line {call.lineno}: operation {arg.id!r} is not a function's parameter")
    params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    if arg.id not in params:
        raise ValueError(f"line {call.lineno}: operation {arg.id!r} is not a parameter of {function.name}")
    index = params.index(arg.id)
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function.name:
            given = node.args[index] if index < len(node.args) else None
            given = given or next((k.value for k in node.keywords if k.arg == arg.id), None)
            value = _literal(given)
            if value is None:
                raise ValueError(f"line {node.lineno}: {function.name} is called with a non-literal operation")
            names.append(value)
    if not names:
        raise ValueError(f"line {call.lineno}: {function.name} is never called in its module")
    return names


def daemon_calls() -> list[AwsCall]:
    """Every AWS call site in the daemon's code."""
    found: list[AwsCall] = []
    for name in sorted(daemon_modules()):
        found.extend(calls_in_source(name, modules()[name].read_text()))
    return found


@cache
def _api_names(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def iam_actions(service: str, operation: str, parts: Iterable[str] = ()) -> frozenset[str]:
    """The IAM actions one call needs; KeyError for an operation the service does not have."""
    action = f"{IAM_PREFIX.get(service, service)}:{_api_names(service)[operation]}"
    actions = ACTION_EXCEPTIONS.get(action, frozenset({action}))
    if action == "dynamodb:TransactWriteItems":
        actions = frozenset(TRANSACT_PARTS[part] for part in parts)
    return actions


@dataclass(frozen=True)
class Deployment:
    """What the Terraform module's variables switch on: the features and the lists that widen the role."""

    remediation_mode: str = "apply"
    scan_enabled: bool = True
    sync: bool = False
    scan_roles: bool = False
    ecs_services: bool = False
    automation_documents: bool = False
    secrets_kms: bool = False
    stack_kms: bool = False
    securityhub: bool = False
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def feature_on(self, feature: str) -> bool:
        return {
            "core": True,
            "dlq": True,  # the stack always configures a DLQ: its monitor runs
            "failures": True,  # the open-failure state is always kept
            "scan": self.scan_enabled,
            "sync": self.sync,
            "remediation": self.remediation_mode != "off",
            "findings": self.securityhub,
        }[feature]

    def needs(self, feature: str, action: str) -> bool:
        """Whether this deployment needs `action` for a call of `feature` (the feature being on)."""
        if feature == "remediation" and (action in WRITES_ON_SECRETS or action == "lambda:InvokeFunction"):
            return self.remediation_mode == "apply"
        if feature == "remediation" and action == "ssm:StartAutomationExecution":
            return self.remediation_mode == "apply" and self.automation_documents
        if action == "sts:AssumeRole":
            return self.scan_roles
        if action == "ecs:UpdateService":
            return self.ecs_services
        return True


def expected_actions(deployment: Deployment, calls: Iterable[AwsCall] | None = None) -> set[str]:
    """The task role's actions for `deployment`, from the daemon's calls."""
    expected: set[str] = set()
    for call in daemon_calls() if calls is None else calls:
        if not deployment.feature_on(call.feature):
            continue
        for action in call.actions:
            if not deployment.needs(call.feature, action):
                continue
            expected.add(action)
            if deployment.secrets_kms:
                expected |= SECRETS_KMS.get(action, frozenset())
            if deployment.stack_kms and action.split(":")[0] in ("dynamodb", "sns"):
                expected |= STACK_KMS
    return expected


def expected_leading_keys(deployment: Deployment) -> dict[str, set[str]]:
    """IAM action → the partitions it is limited to, for the features `deployment` switches on."""
    keys: dict[str, set[str]] = {}
    for feature, by_action in LEADING_KEYS.items():
        if deployment.feature_on(feature):
            for action, patterns in by_action.items():
                keys.setdefault(action, set()).update(patterns)
    return keys


# -- reading a rendered policy document -------------------------------------------------------------------


def as_set(value: str | list[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's Allow statements."""
    return [s for s in policy["Statement"] if s["Effect"] == "Allow"]


def granted(policy: dict[str, Any]) -> set[str]:
    """Every action the policy allows."""
    return {action for s in statements(policy) for action in as_set(s["Action"])}


def resources_for(policy: dict[str, Any], action: str) -> list[tuple[set[str], dict[str, Any]]]:
    """(resources, condition) of each statement granting `action`."""
    return [
        (as_set(s["Resource"]), s.get("Condition", {})) for s in statements(policy) if action in as_set(s["Action"])
    ]
