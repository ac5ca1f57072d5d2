"""The report's manifest: a SHA-256 of exactly what it was built from, so two runs over one period can be compared.

The digest covers, one canonical JSON line each (keys sorted, no spaces, numbers as DynamoDB returned them): the
parameters (format version, since, until, the secrets asked for), then every item the report used, secret by secret
in reading order and within a secret by (pk, sk): event and remediation items whole, and rollups cut to the
period's runs. Items read but outside the period are not in it, so later activity does not change a closed
period's digest; a changed item (a remediation's status moving on, an expired item) does, which is the point.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from daemon.evidence.reader import SecretItems

FORMAT = "rotaudit-evidence/1"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(type(value).__name__)


def canonical(value: Any) -> str:
    """One line of canonical JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


class Manifest:
    """Hashes the parameters, then each secret's items as they are read; `summary()` at the end."""

    def __init__(self, since: str, until: str, secrets: list[str]) -> None:
        self.parameters = {"format": FORMAT, "since": since, "until": until, "secrets": sorted(secrets)}
        self._digest = hashlib.sha256()
        self._digest.update((canonical(self.parameters) + "\n").encode())
        self.items = 0
        self.secrets = 0

    def add(self, group: SecretItems) -> None:
        self.secrets += 1
        for item in sorted((*group.events, *group.rollups), key=lambda i: (str(i["pk"]), str(i["sk"]))):
            self._digest.update((canonical(item) + "\n").encode())
            self.items += 1

    def summary(self) -> dict[str, Any]:
        return {
            "algorithm": "sha256",
            "sha256": self._digest.hexdigest(),
            "items": self.items,
            "secrets": self.secrets,
            "parameters": self.parameters,
        }
