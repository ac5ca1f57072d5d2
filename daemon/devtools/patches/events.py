"""A pinned moto patch for EventBridge: one operation at a time, so rules change safely while events are routed.

Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from daemon.devtools.patches.registry import MARK, require

# --- events-serialised: EventBridge operations one at a time ------------------------------------------------------
# WHY: moto's put_events walks the bus's rules (a dict) and sends to each rule's targets while other request
# threads may add or delete rules: "dictionary changed size during iteration" (HTTP 500, or a lost event on the
# rotation engine's thread, which publishes rotation events while tests provision their rules). AWS routes every
# event to the rules that exist. One lock around the operations that read or change rules is the equivalent.
_EVENTS_OPERATIONS = (
    "put_events",
    "put_rule",
    "delete_rule",
    "put_targets",
    "remove_targets",
    "enable_rule",
    "disable_rule",
    "create_event_bus",
    "delete_event_bus",
)
_events_lock = threading.RLock()


def patch_serialised(patch: str) -> None:
    from moto.events import models

    backend = require(models, patch, "EventsBackend")
    require(backend, patch, *_EVENTS_OPERATIONS)
    for name in _EVENTS_OPERATIONS:
        original = getattr(backend, name)
        if getattr(original, MARK + "_events", None):
            continue

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _events_lock:
                return __original(*args, **kwargs)

        functools.update_wrapper(locked, original)
        setattr(locked, MARK + "_events", patch)
        setattr(backend, name, locked)
