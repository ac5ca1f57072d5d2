"""structlog set-up: JSON lines off a TTY, readable lines on one; event names like `event.processed`."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Keys whose values are credentials or payloads. Our code never logs them; this is the belt to those braces.
_SENSITIVE_KEYS = frozenset(
    {"secretstring", "secret_string", "secretbinary", "secret_binary", "password", "body", "receipthandle"}
)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *, color: bool = True
) -> None:
    """Configure structlog once for the process. `fmt` is auto | json | console; colours only on a terminal, and
    not when `color` is False (callers pass `not daemon.config.no_color()`: NO_COLOR)."""
    out = stream if stream is not None else sys.stderr
    pretty = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=color and out.isatty()) if pretty else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A bound logger tagged with the component name."""
    return structlog.get_logger().bind(component=name)
