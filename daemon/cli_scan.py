"""`rotaudit` subcommands for the scan feature."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Add subcommands; each sets `handler`: an async function of the parsed args returning an exit code."""
    del commands


def _unused(_: argparse.Namespace) -> None:
    return None
