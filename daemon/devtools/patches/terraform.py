"""Pinned moto patches that make Terraform's read-back of SQS queues and ECS services match AWS.

Without them every `terraform plan` on the emulator shows a change: the provider compares what it wrote with
what the emulator reads back. Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require


# WHY: AWS returns RedrivePolicy as compact JSON; moto re-dumps it with spaces, so every terraform plan on the
# emulator showed a whitespace-only change to the queue (and re-ran the provider's 25 s waiter).
def patch_sqs_redrive_format(patch: str) -> None:
    from moto.sqs import models

    queue: Any = models.Queue  # a property is replaced, which mypy cannot follow
    prop = queue.__dict__.get("attributes")
    if not isinstance(prop, property) or prop.fget is None:
        raise broken(patch, "Queue.attributes is no longer a property")
    original = prop.fget
    if getattr(original, MARK, None):
        return
    if "json.dumps(self.redrive_policy)" not in inspect.getsource(original):
        raise broken(patch, "Queue.attributes no longer serialises redrive_policy with json.dumps")

    @functools.wraps(original)
    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original(self)
        if isinstance(self.redrive_policy, dict):
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    setattr(attributes, MARK, patch)
    queue.attributes = property(attributes)


# WHY: moto's CreateService drops availabilityZoneRebalancing (UpdateService keeps it); AWS stores it, ENABLED
# when omitted. Terraform reads it back, so every plan showed a change to the service.
def patch_ecs_az_rebalancing(patch: str) -> None:
    from moto.ecs import responses

    response = responses.EC2ContainerServiceResponse
    original = require(response, patch, "create_service", "_get_param")
    if getattr(original, MARK, None):
        return

    @functools.wraps(original)
    def create_service(self: Any) -> Any:
        result = original(self)
        service = result.result["service"]
        service.availability_zone_rebalancing = self._get_param("availabilityZoneRebalancing") or "ENABLED"
        return result

    install(response, create_service, patch)
