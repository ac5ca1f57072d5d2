"""`rotaudit scan --once` with ROTAUDIT_SECURITYHUB as a subprocess: the same findings as the daemon's timer."""

from __future__ import annotations

import json
import uuid

from daemon.findings.asff import Problem, finding_id
from tests.e2e.test_scan_cli import cli
from tests.support import REGION
from tests.support.scan import ACCOUNT, backdate, client, create_scan_table, create_secret, isolated_region


def test_scan_once_raises_and_then_resolves_the_finding_of_a_flagged_secret(endpoint: str) -> None:
    """A flagged secret in another region of the account gets its finding in the home region's hub; after the
    secret rotates, the next `scan --once` resolves it, under the same id."""
    client("securityhub", endpoint, REGION).enable_security_hub(EnableDefaultStandards=False)
    table, region, uid = create_scan_table(endpoint), isolated_region(), uuid.uuid4().hex[:6]
    sm = client("secretsmanager", endpoint, region)
    tag = f"Cli{uid}=yes"
    arn = create_secret(sm, f"cli{uid}-stale", {f"Cli{uid}": "yes"})
    backdate(f"cli{uid}-stale", 31, region)
    settings = {"ROTAUDIT_SCAN_TARGETS": json.dumps([{"regions": [region]}]), "ROTAUDIT_SCAN_TAG": tag}
    hub = client("securityhub", endpoint, REGION)
    by_arn = {"ResourceId": [{"Value": arn, "Comparison": "EQUALS"}]}

    first = cli(endpoint, table, "scan", "--once", ROTAUDIT_SECURITYHUB="true", **settings)
    assert first.returncode == 0, first.stderr
    (raised,) = hub.get_findings(Filters=by_arn)["Findings"]
    assert raised["Id"] == finding_id(ACCOUNT, region, arn, Problem.NEEDS_ROTATION)
    assert (raised["RecordState"], raised["Resources"][0]["Region"]) == ("ACTIVE", region)
    assert raised["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"

    sm.put_secret_value(SecretId=arn, SecretString="next")
    second = cli(endpoint, table, "scan", "--once", ROTAUDIT_SECURITYHUB="true", **settings)
    assert second.returncode == 0, second.stderr
    (resolved,) = hub.get_findings(Filters=by_arn)["Findings"]
    assert (resolved["Id"], resolved["RecordState"], resolved["Compliance"]["Status"]) == (
        raised["Id"],
        "ARCHIVED",
        "PASSED",
    )
