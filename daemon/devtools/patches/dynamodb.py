"""Pinned moto patches for DynamoDB: key filters rejected as AWS does, one writer at a time, per-item costs.

Registered, in order, by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require

# --- dynamodb-query-rejects-key-filter: Query FilterExpression on key attributes ----------------------------------
# WHY: AWS rejects a Query whose FilterExpression names a key attribute (they belong in the
# KeyConditionExpression); moto accepts it, so a daemon bug would pass every test and fail in production.
# On an index, both the index's and the table's key attributes count. Scan is left alone (AWS allows it).
_QUERY_PARAMS = ("table_name", "index_name", "filter_expression", "expr_names", "expr_values")


def patch_query_filter(patch: str) -> None:
    from moto.dynamodb import comparisons, exceptions, models

    backend = models.DynamoDBBackend
    original = require(backend, patch, "query", "get_schema")
    if getattr(original, MARK, None):
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

    install(backend, query, patch)


# --- dynamodb-transaction-check-then-write: TransactWriteItems priced per item, not per table ---------------------
# WHY: moto's transact_write_items deep-copies every table it touches before writing, so it can roll back on
# failure: each call costs time proportional to the whole table (0.7-1 s per call once the audit table holds
# 1,300 items, against 15 ms with this patch), under the single-writer lock. AWS prices a transaction per item.
# This is check-then-write: every condition is evaluated first (reads only; the caller holds the writer lock
# of dynamodb-single-writer), a failure cancels with the reasons moto gives, and only then are the items
# written. An Update can still fail as it is written (a bad expression): the writes made so far are undone item
# by item, from copies of the few items the transaction touches. Anything else (over 100 items, the same key
# twice) goes to moto's own implementation. Updates matter: the remediation claims' transactions carry one, and
# before they took the fast path each one copied the whole audit table (the chaos run's emulator grew past 7 GB
# of memory).
_FAST_TRANSACT_OPS = frozenset({"Put", "Delete", "ConditionCheck", "Update"})


def _transact_key(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def patch_transactions(patch: str) -> None:
    from moto.dynamodb import comparisons, exceptions, models

    backend = require(models, patch, "DynamoDBBackend")
    original = require(backend, patch, "transact_write_items", "get_table", "get_item", "put_item", "delete_item")
    if getattr(original, MARK, None):
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
    install(backend, transact_write_items, patch)


# --- dynamodb-single-writer: one writer at a time in DynamoDB -----------------------------------------------------
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


def patch_single_writer(patch: str) -> None:
    from moto.dynamodb import models

    backend = require(models, patch, "DynamoDBBackend")
    require(backend, patch, *_DYNAMODB_OPERATIONS)
    for name in _DYNAMODB_OPERATIONS:
        original = getattr(backend, name)
        if getattr(original, MARK + "_lock", None):
            continue

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _dynamodb_lock:
                return __original(*args, **kwargs)

        functools.update_wrapper(locked, original)
        setattr(locked, MARK + "_lock", patch)
        setattr(backend, name, locked)


# --- dynamodb-query-partition-o1: DynamoDB Query reads one partition ----------------------------------------------
# WHY: moto's Table.query on the table itself (no index) builds its candidates from Table.all_items(), which
# walks and sorts every item of the table, then keeps the partition's: O(n log n) per Query, where AWS reads
# one partition. Measured: 27 ms of emulator CPU per Query with 700 items, 110 ms with 3,000 (5 ms patched), so
# the chaos run's thousands of small key-condition Queries dominated the emulator. The wrapper shows query()
# only the partition asked for (the items dict is keyed by hash key), under the single-writer lock; results
# are unchanged.
def patch_query_partition(patch: str) -> None:
    from moto.dynamodb.models import table as table_module

    table_class = require(table_module, patch, "Table")
    original = require(table_class, patch, "query", "all_items")
    if getattr(original, MARK, None):
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

    install(table_class, query, patch)
