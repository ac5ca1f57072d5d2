"""Shared fixtures: one emulator (moto server over HTTP) per session, fresh resources per test.

AWS variables from the outer environment are stripped so no test can reach real AWS.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from daemon.aws import Aws
from daemon.devtools.emulator import Emulator, start_emulator
from daemon.provision import provision
from tests.support import FAKE_CREDENTIALS, REGION


@pytest.fixture(scope="session", autouse=True)
def _no_real_aws() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "ROTAUDIT_"))}
    for key in saved:
        del os.environ[key]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_REGION"] = REGION
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    yield
    for key in [k for k in os.environ if k.startswith(("AWS_", "ROTAUDIT_"))]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def emulator(_no_real_aws: None) -> Iterator[Emulator]:
    server = start_emulator("127.0.0.1", 0)
    yield server
    server.stop()


@pytest.fixture
def endpoint(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
    return emulator.endpoint_url


@pytest.fixture
def stack(endpoint: str) -> dict[str, str]:
    """Freshly provisioned resources with a unique prefix."""

    async def go() -> dict[str, str]:
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            return await provision(aws, f"t{uuid.uuid4().hex[:10]}")

    return asyncio.run(go())
