"""A pinned moto patch for EventBridge: one operation at a time, so rules change safely while events are routed.

Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from daemon.devtools.patches.registry import MARK, install, require

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


# --- events-test-event-pattern: TestEventPattern answers -------------------------------------------------------------
# WHY: moto's TestEventPattern is a no-op (an empty answer, so no `Result`), and `rotaudit doctor` asks it whether each
# rule's pattern matches a sample rotation event. AWS (EventBridge API reference, TestEventPattern): "Tests whether
# the specified event pattern matches the provided event", answering {"Result": true|false}. moto's own matcher
# (`EventPattern`, what routes `PutEvents` to rules here) gives the answer, so doctor sees what the emulator routes.
def patch_test_event_pattern(patch: str) -> None:
    import json

    from moto.events import models, responses

    response_class = require(responses, patch, "EventsHandler")
    existing = require(response_class, patch, "test_event_pattern")
    if getattr(existing, MARK, None):
        return
    event_pattern = require(models, patch, "EventPattern")
    require(event_pattern, patch, "load", "matches_event")

    def test_event_pattern(self: Any) -> str:
        pattern = event_pattern.load(self._get_param("EventPattern"))
        return json.dumps({"Result": bool(pattern.matches_event(json.loads(self._get_param("Event"))))})

    install(response_class, test_event_pattern, patch)
