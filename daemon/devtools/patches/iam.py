"""A pinned moto patch for IAM: a stand-in for SimulatePrincipalPolicy, which moto does not implement.

Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require

# --- iam-simulate-principal-policy-stand-in ------------------------------------------------------------------------
# WHY: moto 5.2 has no SimulatePrincipalPolicy (NotImplementedError, a 500), and `rotaudit doctor` asks it whether
# the task role allows each action the daemon calls. This is a stand-in, far short of IAM's evaluation: it reads the
# role's inline and attached (default version) policies and, per action, answers explicitDeny when a Deny statement
# names the action, allowed when an Allow statement does, implicitDeny otherwise. Action wildcards are matched
# (case-insensitively, as IAM does); `Resource`, `NotAction`, `NotResource`, `Condition`, permission boundaries,
# SCPs and session policies are ignored. So on the emulator it proves that the role's policies name every action
# the daemon calls, and that a missing one is reported: not that the grant covers the right resources.
# AWS reference: IAM API, SimulatePrincipalPolicy (EvaluationResults[].EvalActionName / EvalDecision).


def _statements(document: Any) -> list[dict[str, Any]]:
    policy = json.loads(document) if isinstance(document, str) else document
    found = policy.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def _names(statement: dict[str, Any], action: str) -> bool:
    patterns = statement.get("Action", [])
    patterns = [patterns] if isinstance(patterns, str) else patterns
    return any(fnmatch.fnmatchcase(action.lower(), str(pattern).lower()) for pattern in patterns)


def decide(documents: list[Any], action: str) -> str:
    """explicitDeny, allowed or implicitDeny for `action` under `documents` (see the WHY above for what is left out)."""
    statements = [s for document in documents for s in _statements(document)]
    if any(s.get("Effect") == "Deny" and _names(s, action) for s in statements):
        return "explicitDeny"
    if any(s.get("Effect") == "Allow" and _names(s, action) for s in statements):
        return "allowed"
    return "implicitDeny"


def patch_simulate_principal_policy(patch: str) -> None:
    from moto.core import responses as core_responses
    from moto.iam import responses as iam_responses

    response_class = require(iam_responses, patch, "IamResponse")
    existing = getattr(response_class, "simulate_principal_policy", None)
    if existing is not None:
        if getattr(existing, MARK, None):
            return
        raise broken(patch, "moto now implements SimulatePrincipalPolicy: drop the stand-in")
    require(core_responses.BaseResponse, patch, "_get_param")
    action_result = require(core_responses, patch, "ActionResult")

    def simulate_principal_policy(self: Any) -> Any:
        role = self.backend.get_role_by_arn(self._get_param("PolicySourceArn"))
        documents: list[Any] = list(role.policies.values())
        for managed in role.managed_policies.values():
            version = next(v for v in managed.versions if v.version_id == managed.default_version_id)
            documents.append(version.document)
        results = [
            {"EvalActionName": action, "EvalResourceName": "*", "EvalDecision": decide(documents, action)}
            for action in self._get_param("ActionNames", [])
        ]
        return action_result({"EvaluationResults": results, "IsTruncated": False})

    install(response_class, simulate_principal_policy, patch)
