"""A pinned moto patch for SSM: a stand-in for Automation executions, which moto does not implement.

Registered by `daemon.devtools.patches.apply_patches()`. Tests read `automation_executions` to see what started.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require

# --- ssm-automation-stand-in: SSM Automation stand-in -------------------------------------------------------------
# WHY: moto has no SSM Automation at all (StartAutomationExecution and friends answer 500), and the daemon's
# remediation can start an automation. This is a stand-in, not an emulation: every execution "succeeds" at
# once and nothing runs. moto dispatches an action to the response-class method named after it in
# snake_case, so registering three functions on SimpleSystemManagerResponse is enough.
_AUTOMATION_ACTIONS = ("start_automation_execution", "get_automation_execution", "stop_automation_execution")
# (account, region) -> execution id -> AutomationExecution, as GetAutomationExecution returns it.
automation_executions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
_automation_lock = threading.Lock()


def patch_automation(patch: str) -> None:
    from moto.core import responses as core_responses
    from moto.ssm import exceptions
    from moto.ssm import responses as ssm_responses

    response_class = require(ssm_responses, patch, "SimpleSystemManagerResponse")
    existing = [getattr(response_class, action, None) for action in _AUTOMATION_ACTIONS]
    if any(handler is not None and not getattr(handler, MARK, None) for handler in existing):
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
        install(response_class, handler, patch)
