"""Saved Logs Insights queries on the emulator: the stand-in behaves as the CloudWatch Logs API reference says.

moto has no PutQueryDefinition (daemon/devtools/patches/logs.py stands in); deploy/terraform saves queries with
aws_cloudwatch_query_definition, which creates with PutQueryDefinition, reads back with DescribeQueryDefinitions
by name prefix, updates by id and deletes with DeleteQueryDefinition. Calls go over HTTP like the provider's.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support import boto


def test_a_saved_query_is_created_read_back_updated_and_deleted(endpoint: str) -> None:
    logs = boto("logs", endpoint)
    prefix = f"q{uuid.uuid4().hex[:8]}"
    created = logs.put_query_definition(name=f"{prefix}/errors", queryString="fields @message", logGroupNames=["/g"])
    definition_id = created["queryDefinitionId"]
    logs.put_query_definition(name=f"{prefix}/other", queryString="fields @timestamp")
    logs.put_query_definition(name=f"x{prefix}/not-this-prefix", queryString="fields @timestamp")

    (found, other) = logs.describe_query_definitions(queryDefinitionNamePrefix=prefix)["queryDefinitions"]
    assert (found["queryDefinitionId"], found["name"], found["queryString"]) == (
        definition_id,
        f"{prefix}/errors",
        "fields @message",
    )
    assert found["logGroupNames"] == ["/g"]
    assert other["name"] == f"{prefix}/other"

    page = logs.describe_query_definitions(queryDefinitionNamePrefix=prefix, maxResults=1)
    assert len(page["queryDefinitions"]) == 1
    rest = logs.describe_query_definitions(queryDefinitionNamePrefix=prefix, maxResults=1, nextToken=page["nextToken"])
    assert rest["queryDefinitions"][0]["name"] == f"{prefix}/other"
    assert "nextToken" not in rest

    logs.put_query_definition(queryDefinitionId=definition_id, name=f"{prefix}/errors", queryString="fields level")
    (updated, _) = logs.describe_query_definitions(queryDefinitionNamePrefix=prefix)["queryDefinitions"]
    assert (updated["queryDefinitionId"], updated["queryString"]) == (definition_id, "fields level")

    assert logs.delete_query_definition(queryDefinitionId=definition_id)["success"] is True
    assert [
        d["name"] for d in logs.describe_query_definitions(queryDefinitionNamePrefix=prefix)["queryDefinitions"]
    ] == [f"{prefix}/other"]


def test_an_unknown_query_definition_is_not_found(endpoint: str) -> None:
    logs = boto("logs", endpoint)
    with pytest.raises(ClientError) as deleted:
        logs.delete_query_definition(queryDefinitionId=str(uuid.uuid4()))
    assert deleted.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as updated:
        logs.put_query_definition(queryDefinitionId=str(uuid.uuid4()), name="n", queryString="fields @message")
    assert updated.value.response["Error"]["Code"] == "ResourceNotFoundException"
