"""Pinned moto patches for SQS: receives and sends cost O(1) per message, and operations run one at a time.

Registered, in order, by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import functools
import inspect
import textwrap
import threading
from collections.abc import Callable
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require


# --- sqs-retention-check-o1: SQS receive cost ---------------------------------------------------------------------
# WHY: receive_message calls is_message_valid_based_on_retention_period for every message it hands out, and
# moto's version goes through get_queue_attributes -> Queue.attributes, which recomputes every attribute,
# including three ApproximateNumberOf* counts that each walk the whole queue. Receiving n messages costs
# O(n^2). Reading the one attribute directly gives the same answer in O(1) (2000 queued messages received and
# deleted in batches of 10: 309 s stock, 12 s patched). SendMessage has the same cost: it reads
# Queue.attributes once per message for ContentBasedDeduplication (sqs-send-dedup-check-o1, below).
def patch_retention_check(patch: str) -> None:
    from moto.sqs import models

    backend = models.SQSBackend
    if getattr(require(backend, patch, "is_message_valid_based_on_retention_period"), MARK, None):
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

    install(backend, is_message_valid_based_on_retention_period, patch)


# --- sqs-send-dedup-check-o1: SQS send cost -----------------------------------------------------------------------
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


def patch_send_dedup_check(patch: str) -> None:
    from moto.sqs import models

    targets = ((require(models, patch, "SQSBackend"), "send_message"), (require(models, patch, "Queue"), "add_message"))
    for owner, name in targets:
        original = require(owner, patch, name)
        if getattr(original, MARK, None):
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
        install(owner, namespace[name], patch)


# --- sqs-serialised: SQS operations one at a time -----------------------------------------------------------------
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


def patch_serialised(patch: str) -> None:
    from moto.core.utils import unix_time
    from moto.sqs import models

    backend = require(models, patch, "SQSBackend")
    require(backend, patch, "receive_message", *_SQS_OPERATIONS)
    require(models.Queue, patch, "wait_for_messages")
    for name in _SQS_OPERATIONS:
        original = getattr(backend, name)
        if getattr(original, MARK + "_sqs", None):
            continue

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _sqs_lock:
                return __original(*args, **kwargs)

        functools.update_wrapper(locked, original)
        setattr(locked, MARK + "_sqs", patch)
        setattr(backend, name, locked)

    receive = backend.receive_message
    if getattr(receive, MARK + "_sqs", None):
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

    setattr(receive_message, MARK + "_sqs", patch)
    backend.receive_message = receive_message
