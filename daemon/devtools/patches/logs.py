"""A pinned moto patch for CloudWatch Logs: a stand-in for saved Logs Insights queries, which moto does not have.

Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require

# --- logs-query-definitions-stand-in ------------------------------------------------------------------------------
# WHY: moto answers PutQueryDefinition with NotImplementedError (a 500 the AWS provider retries until its timeout),
# and deploy/terraform saves Logs Insights queries (aws_cloudwatch_query_definition). This stores them as AWS
# does, per account and region (CloudWatch Logs API reference: PutQueryDefinition creates, or updates when
# queryDefinitionId is given, and returns queryDefinitionId; DescribeQueryDefinitions filters by
# queryDefinitionNamePrefix and pages with maxResults/nextToken; DeleteQueryDefinition returns `success`). It
# runs no query: a stand-in, not an emulation.
_ACTIONS = ("put_query_definition", "describe_query_definitions", "delete_query_definition")
# (account, region) -> id -> QueryDefinition, as DescribeQueryDefinitions returns it.
query_definitions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
_lock = threading.Lock()


def patch_query_definitions(patch: str) -> None:
    from moto.logs import exceptions
    from moto.logs import responses as logs_responses

    response_class = require(logs_responses, patch, "LogsResponse")
    existing = [getattr(response_class, action, None) for action in _ACTIONS]
    if any(handler is not None and not getattr(handler, MARK, None) for handler in existing):
        raise broken(patch, "moto now implements query definitions: drop the stand-in")
    if existing[0] is not None:
        return
    not_found = require(exceptions, patch, "ResourceNotFoundException")
    invalid = require(exceptions, patch, "InvalidParameterException")

    def stored(response: Any) -> dict[str, dict[str, Any]]:
        return query_definitions.setdefault((response.current_account, response.region), {})

    def put_query_definition(self: Any) -> str:
        name, query = self._get_param("name"), self._get_param("queryString")
        if not name or not query:
            raise invalid("name and queryString are required")
        with _lock:
            definitions = stored(self)
            definition_id = self._get_param("queryDefinitionId") or str(uuid.uuid4())
            if self._get_param("queryDefinitionId") and definition_id not in definitions:
                raise not_found()
            definitions[definition_id] = {
                "queryDefinitionId": definition_id,
                "name": name,
                "queryString": query,
                "lastModified": int(time.time() * 1000),
                "logGroupNames": list(self._get_param("logGroupNames") or []),
            }
        return json.dumps({"queryDefinitionId": definition_id})

    def describe_query_definitions(self: Any) -> str:
        prefix = self._get_param("queryDefinitionNamePrefix") or ""
        limit = int(self._get_param("maxResults") or 1000)
        start = int(self._get_param("nextToken") or 0)
        with _lock:
            found = sorted((d for d in stored(self).values() if d["name"].startswith(prefix)), key=lambda d: d["name"])
        page: dict[str, Any] = {"queryDefinitions": found[start : start + limit]}
        if start + limit < len(found):
            page["nextToken"] = str(start + limit)
        return json.dumps(page)

    def delete_query_definition(self: Any) -> str:
        with _lock:
            removed = stored(self).pop(self._get_param("queryDefinitionId"), None)
        if removed is None:
            raise not_found()
        return json.dumps({"success": True})

    for handler in (put_query_definition, describe_query_definitions, delete_query_definition):
        install(response_class, handler, patch)
