"""How commands print: aligned plain-text tables, and JSON of the audit table's values (Decimals, sets)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any


def aligned(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The header and rows as lines of left-aligned columns, two spaces apart, without trailing spaces."""
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print `aligned(header, rows)` to stdout."""
    for line in aligned(header, rows):
        print(line)


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for DynamoDB's values: numbers come back as Decimal, string sets as set."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(type(value).__name__)


def print_json(value: Any) -> None:
    """`--output json`: one JSON document on stdout, indented (as the AWS CLI prints), audit-table values converted."""
    print(json.dumps(value, default=json_default, indent=2))
