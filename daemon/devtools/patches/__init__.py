"""Pinned patches that adapt moto (server mode) to what rotaudit relies on and to how AWS behaves.

Each patch checks its target first and raises `PatchError` when moto's internals have moved, so an upgrade fails
loudly instead of quietly changing behaviour. `apply_patches()` is idempotent.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

PINNED_MOTO = "5.2"

_MARK = "_rotaudit_patch"  # set on every function we install, so a second apply_patches() is a no-op
_patch_lock = threading.Lock()


class PatchError(RuntimeError):
    """A moto patch no longer applies: moto's internals changed. The message names the patch and the fix."""


def broken(patch: str, what: str) -> PatchError:
    return PatchError(
        f"moto patch {patch!r} no longer applies: {what}. moto's internals changed since {PINNED_MOTO}.x: "
        f"re-read the moto source, then rewrite the patch in daemon/devtools/emulator.py, drop it if moto now gets "
        f"this right, or pin moto back to {PINNED_MOTO}.x."
    )


def require(owner: Any, patch: str, *attrs: str) -> Any:
    """The first of `attrs` on `owner`, after checking that every one of them exists."""
    for attr in attrs:
        if getattr(owner, attr, None) is None:
            raise broken(patch, f"{getattr(owner, '__name__', owner)}.{attr} is missing")
    return getattr(owner, attrs[0])


def _install(owner: Any, function: Callable[..., Any], patch: str) -> None:
    setattr(function, _MARK, patch)
    setattr(owner, function.__name__, function)


# --- patch 1: SQS receive cost ----------------------------------------------------------------------------
# WHY: receive_message calls is_message_valid_based_on_retention_period for every message it hands out, and
# moto's version goes through get_queue_attributes -> Queue.attributes, which recomputes every attribute,
# including three ApproximateNumberOf* counts that each walk the whole queue. Receiving n messages costs
# O(n^2). Reading the one attribute directly gives the same answer in O(1) (2000 queued messages received and
# deleted in batches of 10: 309 s stock, 12 s patched). SendMessage has the same cost, unpatched: it reads
# Queue.attributes once per message for ContentBasedDeduplication.
def _patch_sqs_retention(patch: str) -> None:
    from moto.sqs import models

    backend = models.SQSBackend
    if getattr(require(backend, patch, "is_message_valid_based_on_retention_period"), _MARK, None):
        return
    if "is_message_valid_based_on_retention_period" not in inspect.getsource(backend.receive_message):
        raise broken(patch, "SQSBackend.receive_message no longer calls the retention check")
    if "MessageRetentionPeriod" not in require(models.Queue, patch, "BASE_ATTRIBUTES"):
        raise broken(patch, "Queue has no MessageRetentionPeriod attribute")
    from moto.core.utils import unix_time  # the clock moto's own check reads

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        # Same arithmetic as moto's: kept while sent_at + retention is still in the future.
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_s + message.sent_timestamp / 1000 > unix_time())

    _install(backend, is_message_valid_based_on_retention_period, patch)


# --- patch 2: Query FilterExpression on key attributes ----------------------------------------------------
# WHY: AWS rejects a Query whose FilterExpression names a key attribute (they belong in the
# KeyConditionExpression); moto accepts it, so a daemon bug would pass every test and fail in production.
# On an index, both the index's and the table's key attributes count. Scan is left alone (AWS allows it).
_QUERY_PARAMS = ("table_name", "index_name", "filter_expression", "expr_names", "expr_values")


def _patch_dynamodb_query_filter(patch: str) -> None:
    from moto.dynamodb import comparisons, exceptions, models

    backend = models.DynamoDBBackend
    original = require(backend, patch, "query", "get_schema")
    if getattr(original, _MARK, None):
        return
    signature = inspect.signature(original)
    if missing := [name for name in _QUERY_PARAMS if name not in signature.parameters]:
        raise broken(patch, f"DynamoDBBackend.query lost its parameters {missing}")
    require(comparisons, patch, "get_filter_expression", "Op", "Func", "AttributePath")
    validation_error = require(exceptions, patch, "MockValidationException")

    def top_level_names(node: Any) -> Iterator[str]:
        # moto's parser has already replaced "#name" placeholders with the attribute names.
        if isinstance(node, comparisons.AttributePath):
            yield str(node.path[0])
        elif isinstance(node, comparisons.Op | comparisons.Func):
            children = (node.lhs, node.rhs) if isinstance(node, comparisons.Op) else node.arguments
            for child in children:
                if child is not None:
                    yield from top_level_names(child)

    @functools.wraps(original)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs).arguments
        if call.get("filter_expression"):
            table, index = call["table_name"], call.get("index_name")
            # On an index, the index's own key attributes are the ones a filter may not name.
            schemas = self.get_schema(table, index)
            keys = {key["AttributeName"] for key in schemas}
            tree = comparisons.get_filter_expression(
                call["filter_expression"], call.get("expr_names"), call.get("expr_values")
            )
            for name in top_level_names(tree):
                if name in keys:
                    raise validation_error(
                        f"Filter Expression can only contain non-primary key attributes: Primary key attribute: {name}"
                    )
        return original(self, *args, **kwargs)

    _install(backend, query, patch)


# --- patch 3: SSM Automation stand-in ---------------------------------------------------------------------
# WHY: moto has no SSM Automation at all (StartAutomationExecution and friends answer 500), and the daemon's
# remediation can start an automation. This is a stand-in, not an emulation: every execution "succeeds" at
# once and nothing runs. moto dispatches an action to the response-class method named after it in
# snake_case, so registering three functions on SimpleSystemManagerResponse is enough.
_AUTOMATION_ACTIONS = ("start_automation_execution", "get_automation_execution", "stop_automation_execution")
# (account, region) -> execution id -> AutomationExecution, as GetAutomationExecution returns it.
automation_executions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
_automation_lock = threading.Lock()


def _patch_ssm_automation(patch: str) -> None:
    from moto.core import responses as core_responses
    from moto.ssm import exceptions
    from moto.ssm import responses as ssm_responses

    response_class = require(ssm_responses, patch, "SimpleSystemManagerResponse")
    existing = [getattr(response_class, action, None) for action in _AUTOMATION_ACTIONS]
    if any(handler is not None and not getattr(handler, _MARK, None) for handler in existing):
        raise broken(patch, "moto now implements SSM Automation: drop the stand-in")
    if existing[0] is not None:
        return
    # current_account and region are instance attributes, set per request by setup_class.
    require(core_responses.BaseResponse, patch, "_get_param", "setup_class")
    action_result = require(core_responses, patch, "ActionResult", "EmptyResult")
    empty_result = core_responses.EmptyResult
    ssm_error = require(exceptions, patch, "SSMException")

    def executions(response: Any) -> dict[str, dict[str, Any]]:
        return automation_executions.setdefault((response.current_account, response.region), {})

    def lookup(response: Any) -> dict[str, Any]:
        execution_id = response._get_param("AutomationExecutionId")
        if (execution := executions(response).get(execution_id)) is None:
            raise ssm_error("AutomationExecutionNotFoundException", f"Execution {execution_id} not found")
        return execution

    def start_automation_execution(self: Any) -> Any:
        execution_id = str(uuid.uuid4())
        with _automation_lock:
            executions(self)[execution_id] = {
                "AutomationExecutionId": execution_id,
                "DocumentName": self._get_param("DocumentName"),
                "AutomationExecutionStatus": "Success",
                "Parameters": self._get_param("Parameters") or {},
            }
        return action_result({"AutomationExecutionId": execution_id})

    def get_automation_execution(self: Any) -> Any:
        with _automation_lock:
            return action_result({"AutomationExecution": dict(lookup(self))})

    def stop_automation_execution(self: Any) -> Any:
        with _automation_lock:
            lookup(self)["AutomationExecutionStatus"] = "Cancelled"
        return empty_result()

    for handler in (start_automation_execution, get_automation_execution, stop_automation_execution):
        _install(response_class, handler, patch)


# --- patch 4: SQS send cost -------------------------------------------------------------------------------
# WHY: SendMessage (and Queue.add_message) read `queue.attributes` to learn ContentBasedDeduplication, and that
# property recomputes every attribute, walking the whole queue three times: n sends cost O(n^2) (2000 sends
# took over 100 s). Reading the one attribute directly is the same answer in O(1). The two functions are
# recompiled from moto's own source with only that expression replaced; if the expression is gone, this fails.
_DEDUP_READS = {
    'queue.attributes.get("ContentBasedDeduplication") == "true"': "_content_dedup(queue)",
    'self.attributes.get("ContentBasedDeduplication") == "true"': "_content_dedup(self)",
}


def _content_dedup(queue: Any) -> bool:
    # Queue.attributes lowercases booleans to "true"/"false"; compare the same way.
    return str(queue.content_based_deduplication).lower() == "true"


def _patch_sqs_send(patch: str) -> None:
    from moto.sqs import models

    targets = ((require(models, patch, "SQSBackend"), "send_message"), (require(models, patch, "Queue"), "add_message"))
    for owner, name in targets:
        original = require(owner, patch, name)
        if getattr(original, _MARK, None):
            continue
        source = textwrap.dedent(inspect.getsource(original))
        rewritten = source
        for old, new_expr in _DEDUP_READS.items():
            rewritten = rewritten.replace(old, new_expr)
        if rewritten == source:
            raise broken(patch, f"{owner.__name__}.{name} no longer reads ContentBasedDeduplication that way")
        namespace = dict(vars(models))
        namespace["_content_dedup"] = _content_dedup
        exec(compile(rewritten, inspect.getsourcefile(original) or "<moto>", "exec"), namespace)  # noqa: S102 - moto's own source, one expression replaced
        _install(owner, namespace[name], patch)


# --- patch 7: TransactWriteItems priced per item, not per table -----------------------------------------------
# WHY: moto's transact_write_items deep-copies every table it touches before writing, so it can roll back on
# failure: each call costs time proportional to the whole table (0.7-1 s per call once the audit table holds
# 1,300 items, against 15 ms with this patch), under the single-writer lock. AWS prices a transaction per item.
# This is check-then-write: every condition is evaluated first (reads only; the caller holds the writer lock
# of patch 5), a failure cancels with the reasons moto gives, and only then are the items written. An Update can
# still fail as it is written (a bad expression): the writes made so far are undone item by item, from copies
# of the few items the transaction touches. Anything else (over 100 items, the same key twice) goes to moto's
# own implementation. Updates matter: the remediation claims' transactions carry one, and before they took the
# fast path each one copied the whole audit table (the chaos run's emulator grew past 7 GB of memory).
_FAST_TRANSACT_OPS = frozenset({"Put", "Delete", "ConditionCheck", "Update"})


def _transact_key(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _patch_dynamodb_transactions(patch: str) -> None:
    from moto.dynamodb import comparisons, exceptions, models

    backend = require(models, patch, "DynamoDBBackend")
    original = require(backend, patch, "transact_write_items", "get_table", "get_item", "put_item", "delete_item")
    if getattr(original, _MARK, None):
        return
    get_filter_expression = require(comparisons, patch, "get_filter_expression")
    condition_failed = require(exceptions, patch, "ConditionalCheckFailed")
    cancelled = require(exceptions, patch, "TransactionCanceledException")
    validation_error = require(exceptions, patch, "MockValidationException")

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        ops = [next(iter(item.items())) for item in transact_items if len(item) == 1]
        if len(ops) != len(transact_items) or len(ops) > 100 or any(t not in _FAST_TRANSACT_OPS for t, _ in ops):
            original(self, transact_items)
            return
        seen: set[tuple[str, str]] = set()
        planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        reasons: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
        for op_type, op in ops:
            key = _transact_key(self.get_table(op["TableName"]), op_type, op)
            ident = (str(op["TableName"]), json.dumps(key, sort_keys=True))
            if ident in seen:
                original(self, transact_items)  # moto's own "multiple operations on one item" error
                return
            seen.add(ident)
            planned.append((op_type, op, key))
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if not get_filter_expression(condition, names, values).expr(current):
                    old = None
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    reasons.append(("ConditionalCheckFailed", condition_failed(item=old).message, old))
                    continue
            reasons.append((None, None, None))
        if any(code is not None for code, _, _ in reasons):
            raise cancelled(reasons)
        undo: list[tuple[str, dict[str, Any], Any]] = []  # (table, key, the item before), to roll back with
        for index, (op_type, op, key) in enumerate(planned):
            if op_type == "ConditionCheck":
                continue
            undo.append((op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key))))
            try:
                if op_type == "Put":
                    self.put_item(op["TableName"], op["Item"])
                elif op_type == "Delete":
                    self.delete_item(op["TableName"], key)
                else:
                    self.update_item(
                        op["TableName"],
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=op.get("ExpressionAttributeNames"),
                        expression_attribute_values=op.get("ExpressionAttributeValues"),
                    )
            except Exception as exc:
                for table_name, item_key, before in reversed(undo):
                    if before is None:
                        self.delete_item(table_name, item_key)
                    else:
                        self.put_item(table_name, before.to_json()["Attributes"])
                if isinstance(exc, validation_error):
                    raise
                failed: list[tuple[str | None, str | None, None]] = [(None, None, None)] * len(planned)
                failed[index] = (type(exc).__name__, str(exc), None)
                raise cancelled(failed) from None

    functools.update_wrapper(transact_write_items, original)
    _install(backend, transact_write_items, patch)


# --- patch 5: one writer at a time in DynamoDB ------------------------------------------------------------
# WHY: moto's TransactWriteItems deep-copies the table for rollback while other request threads write to it,
# failing with "dictionary changed size during iteration" (HTTP 500) under concurrent writers; scans race the
# same way. AWS serialises per item; a single lock around moto's table operations is the simple equivalent.
_DYNAMODB_OPERATIONS = (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
)
_dynamodb_lock = threading.RLock()


def _patch_dynamodb_lock(patch: str) -> None:
    from moto.dynamodb import models

    backend = require(models, patch, "DynamoDBBackend")
    require(backend, patch, *_DYNAMODB_OPERATIONS)
    for name in _DYNAMODB_OPERATIONS:
        original = getattr(backend, name)
        if getattr(original, _MARK + "_lock", None):
            continue

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _dynamodb_lock:
                return __original(*args, **kwargs)

        functools.update_wrapper(locked, original)
        setattr(locked, _MARK + "_lock", patch)
        setattr(backend, name, locked)


# --- patch 6: SQS operations one at a time ------------------------------------------------------------------
# WHY: moto's SQS queue is not safe under concurrent requests. DeleteMessage rebuilds the queue's message list
# from a snapshot, so two concurrent deletes (or a delete racing a send) can undo each other: the "deleted"
# message comes back after its visibility timeout. Two concurrent receives can also hand out the same message.
# AWS does neither. Every SQS operation now runs under one lock; a long-poll receive takes the lock only
# for each non-blocking attempt and waits for new messages outside it, so long polls still block and wake.
_SQS_OPERATIONS = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
    "get_queue_attributes",
    "set_queue_attributes",
)
_sqs_lock = threading.RLock()


def _patch_sqs_serialised(patch: str) -> None:
    from moto.core.utils import unix_time
    from moto.sqs import models

    backend = require(models, patch, "SQSBackend")
    require(backend, patch, "receive_message", *_SQS_OPERATIONS)
    require(models.Queue, patch, "wait_for_messages")
    for name in _SQS_OPERATIONS:
        original = getattr(backend, name)
        if getattr(original, _MARK + "_sqs", None):
            continue

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _sqs_lock:
                return __original(*args, **kwargs)

        functools.update_wrapper(locked, original)
        setattr(locked, _MARK + "_sqs", patch)
        setattr(backend, name, locked)

    receive = backend.receive_message
    if getattr(receive, _MARK + "_sqs", None):
        return
    if "wait_seconds_timeout" not in inspect.signature(receive).parameters:
        raise broken(patch, "SQSBackend.receive_message has no wait_seconds_timeout parameter")

    @functools.wraps(receive)
    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = unix_time() + int(wait_seconds_timeout or 0)
        while True:
            with _sqs_lock:
                found = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - unix_time()
            if found or remaining <= 0:
                return found
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))

    setattr(receive_message, _MARK + "_sqs", patch)
    backend.receive_message = receive_message


def _patch_secretsmanager_list(patch: str) -> None:
    from daemon.devtools.patches.secretsmanager import patch_list_secrets  # imports this module: import on use

    patch_list_secrets(patch)


def _patch_sqs_redrive_format(patch: str) -> None:
    from daemon.devtools.patches.terraform import patch_sqs_redrive_format

    patch_sqs_redrive_format(patch)


def _patch_ecs_az_rebalancing(patch: str) -> None:
    from daemon.devtools.patches.terraform import patch_ecs_az_rebalancing

    patch_ecs_az_rebalancing(patch)


# --- patch: DynamoDB Query reads one partition --------------------------------------------------------------
# WHY: moto's Table.query on the table itself (no index) builds its candidates from Table.all_items(), which
# walks and sorts every item of the table, then keeps the partition's: O(n log n) per Query, where AWS reads
# one partition. Measured: 27 ms of emulator CPU per Query with 700 items, 110 ms with 3,000 (5 ms patched), so
# the chaos run's thousands of small key-condition Queries dominated the emulator. The wrapper shows query()
# only the partition asked for (the items dict is keyed by hash key), under the single-writer lock; results
# are unchanged.
def _patch_dynamodb_query_partition(patch: str) -> None:
    from moto.dynamodb.models import table as table_module

    table_class = require(table_module, patch, "Table")
    original = require(table_class, patch, "query", "all_items")
    if getattr(original, _MARK, None):
        return
    signature = inspect.signature(original)
    if missing := [name for name in ("hash_key", "index_name") if name not in signature.parameters]:
        raise broken(patch, f"Table.query lost its parameters {missing}")

    @functools.wraps(original)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs).arguments
        hash_key = call.get("hash_key")
        if call.get("index_name") or hash_key is None or not self.range_key_attr:
            return original(self, *args, **kwargs)
        with _dynamodb_lock:
            everything = self.items
            self.items = {hash_key: everything[hash_key]} if hash_key in everything else {}
            try:
                return original(self, *args, **kwargs)
            finally:
                self.items = everything

    _install(table_class, query, patch)


_PATCHES: tuple[tuple[str, Callable[[str], None]], ...] = (
    ("sqs-retention-check-o1", _patch_sqs_retention),
    ("dynamodb-query-rejects-key-filter", _patch_dynamodb_query_filter),
    ("ssm-automation-stand-in", _patch_ssm_automation),
    ("sqs-send-dedup-check-o1", _patch_sqs_send),
    ("dynamodb-transaction-check-then-write", _patch_dynamodb_transactions),
    ("dynamodb-single-writer", _patch_dynamodb_lock),
    ("sqs-serialised", _patch_sqs_serialised),
    ("secretsmanager-list-in-one-pass", _patch_secretsmanager_list),
    ("sqs-redrive-policy-compact", _patch_sqs_redrive_format),
    ("ecs-service-az-rebalancing", _patch_ecs_az_rebalancing),
    ("dynamodb-query-partition-o1", _patch_dynamodb_query_partition),
)


def apply_patches() -> list[str]:
    """Idempotently patch moto in this process; return the names of the patches applied.

    Raises PatchError if a target is missing or moto's version is not PINNED_MOTO.x.
    """
    import moto

    version = str(getattr(moto, "__version__", "unknown"))
    if version.split(".")[:2] != PINNED_MOTO.split("."):
        raise PatchError(
            f"moto {version} is installed but the patches in daemon/devtools/emulator.py were written for "
            f"{PINNED_MOTO}.x: install moto {PINNED_MOTO}.x, or re-check every patch and bump PINNED_MOTO."
        )
    with _patch_lock:
        for name, patch in _PATCHES:
            patch(name)
    return [name for name, _ in _PATCHES]
