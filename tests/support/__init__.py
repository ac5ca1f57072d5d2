"""Helpers for tests: AWS clients on the emulator, subprocess environments, waiting on conditions."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def boto(service: str, endpoint_url: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint_url)


def daemon_env(endpoint_url: str, stack: dict[str, str], **extra: str) -> dict[str, str]:
    """Environment for a daemon subprocess against the emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "ROTAUDIT_QUEUE_URL": stack["queue_url"],
            "ROTAUDIT_AUDIT_TABLE": stack["table_name"],
            "ROTAUDIT_HTTP_PORT": str(free_port()),
            "ROTAUDIT_LOG_FORMAT": "json",
            "ROTAUDIT_WAIT_TIME_S": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def rotaudit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "daemon", *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")
        time.sleep(interval_s)
