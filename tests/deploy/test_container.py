"""The container image: hadolint-clean, built with podman, and run against the emulator as it would run on ECS.

The image is built by deploy/container/build-image.sh on a Python base made from Debian packages (no image
registry is reachable here); unchanged inputs are not rebuilt. Containers use the host network, so the daemon
inside reaches the session's emulator on 127.0.0.1 and the test reaches the daemon's health port. They run with
a read-only root filesystem and no tmpfs at all, which proves the daemon writes nothing at run time.
`make container-tools` installs podman, runc, mmdebstrap and hadolint.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon import __version__
from daemon.aws import Aws
from daemon.devtools.emulator import Emulator
from daemon.emit import build_event
from daemon.provision import provision
from tests.support import FAKE_CREDENTIALS, REGION, ROOT, boto, free_port, wait_until

pytestmark = pytest.mark.slow

CONTAINER_DIR = ROOT / "deploy" / "container"
PODMAN = CONTAINER_DIR / "podman.sh"
HADOLINT = Path(os.environ.get("HADOLINT", "/var/cache/rotaudit/container/bin/hadolint"))
UID = 10001
INSTALL_HINT = "run make container-tools"


def _require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: {INSTALL_HINT}")


def _podman(*args: str, timeout_s: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout_s)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:2])} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@dataclass(frozen=True)
class Container:
    """A detached container running the daemon, and the host port of its health server."""

    name: str
    port: int

    def inspect(self, template: str) -> str:
        return _podman("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        """What the daemon wrote; its JSON log lines go to stderr."""
        result = _podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_ready(self) -> None:
        try:
            wait_until(lambda: _get(self.port, "/readyz")[0] == 200, timeout_s=60, interval_s=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; container logs:\n{self.logs()[-3000:]}") from None


def _run_daemon(image: str, endpoint_url: str, stack: dict[str, str]) -> Container:
    container = Container(f"rotaudit-test-{uuid.uuid4().hex[:8]}", free_port())
    env = {
        **FAKE_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "ROTAUDIT_QUEUE_URL": stack["queue_url"],
        "ROTAUDIT_AUDIT_TABLE": stack["table_name"],
        "ROTAUDIT_HTTP_PORT": str(container.port),
    }
    options = ["--network=host", "--read-only", "--read-only-tmpfs=false", "--health-interval=disable"]
    env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    _podman("run", "--detach", "--pull=never", "--name", container.name, *options, *env_args, image)
    return container


@pytest.fixture(scope="module")
def image() -> str:
    """The image for the current tree, built (or found already built) by deploy/container/build-image.sh."""
    _require("podman", "runc", "mmdebstrap")
    result = subprocess.run(
        [str(CONTAINER_DIR / "build-image.sh")], capture_output=True, text=True, timeout=900, cwd=ROOT
    )
    assert result.returncode == 0, f"image build failed:\n{result.stderr[-4000:]}"
    return result.stdout.split()[-1]


@pytest.fixture(scope="module")
def module_stack(emulator: Emulator) -> dict[str, str]:
    """Resources on the emulator shared by this module's containers."""

    async def go() -> dict[str, str]:
        async with Aws(REGION, endpoint_url=emulator.endpoint_url) as aws:
            return await provision(aws, f"c{uuid.uuid4().hex[:10]}")

    return asyncio.run(go())


@pytest.fixture
def start(image: str, emulator: Emulator, module_stack: dict[str, str]) -> Iterator[Callable[[], Container]]:
    """Start daemon containers on demand; remove them afterwards."""
    started: list[Container] = []

    def make() -> Container:
        container = _run_daemon(image, emulator.endpoint_url, module_stack)
        started.append(container)
        return container

    yield make
    for container in started:
        _podman("rm", "--force", "--time", "0", container.name, check=False)


@pytest.fixture(scope="module")
def running(image: str, emulator: Emulator, module_stack: dict[str, str]) -> Iterator[Container]:
    """One daemon container, ready, shared by the read-only checks."""
    container = _run_daemon(image, emulator.endpoint_url, module_stack)
    try:
        container.wait_ready()
        yield container
    finally:
        _podman("rm", "--force", "--time", "0", container.name, check=False)


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing in the Dockerfile (every ignored rule would carry its reason inline)."""
    if not os.access(HADOLINT, os.X_OK):
        pytest.fail(f"hadolint not found at {HADOLINT}: {INSTALL_HINT}")
    result = subprocess.run([str(HADOLINT), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_config_runs_the_daemon_as_pid_1_non_root(image: str) -> None:
    """Exec-form `rotaudit run`, a numeric non-root user, the /healthz HEALTHCHECK and the metrics port."""
    config = json.loads(_podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["Entrypoint"] == ["rotaudit"]
    assert config["Cmd"] == ["run"]
    assert config["User"] == f"{UID}:{UID}"
    healthcheck = json.loads(_podman("image", "inspect", "--format", "{{json .HealthCheck}}", image).stdout)
    assert healthcheck["Test"][:2] == ["CMD", "python3"]
    assert "/healthz" in healthcheck["Test"][-1]
    assert "9108/tcp" in config["ExposedPorts"]
    assert {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"} <= set(config["Env"])


def test_image_carries_oci_labels(image: str) -> None:
    """The OCI labels name the source, the licence, daemon/__init__.py's version and the commit built from."""
    labels = json.loads(_podman("image", "inspect", "--format", "{{json .Config.Labels}}", image).stdout)
    oci = {key.removeprefix("org.opencontainers.image."): value for key, value in labels.items()}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    commit = head.stdout.strip()
    assert oci["source"] == "https://github.com/rotaudit/rotaudit"
    assert oci["licenses"] == "Apache-2.0"
    assert oci["title"] == "rotaudit"
    assert oci["description"]
    assert oci["version"] == __version__
    # build-image.sh marks a tree with uncommitted changes to the image's inputs as <commit>-dirty.
    assert oci["revision"] in (commit, f"{commit}-dirty")


def test_image_holds_runtime_dependencies_only(image: str) -> None:
    """The daemon's dependencies import; the dev and emulator extras, pip and setuptools are absent."""
    probe = (
        "import importlib.util as u, daemon.app, daemon.health; "
        "print(' '.join(m for m in ('moto', 'pytest', 'hypothesis', 'mypy', 'ruff', 'pip', 'setuptools') "
        "if u.find_spec(m)))"
    )
    result = _podman("run", "--rm", "--pull=never", "--read-only", "--entrypoint", "python3", image, "-c", probe)
    assert result.stdout.strip() == ""


def test_image_ships_no_dev_tools_and_no_module_importing_moto(image: str) -> None:
    """daemon.devtools is not in the image, and no module of the installed package imports moto."""
    probe = (
        "import ast, importlib.util as u, pathlib, daemon; "
        "root = pathlib.Path(daemon.__file__).parent; "
        "bad = [str(p.relative_to(root)) for p in root.rglob('*.py') for n in ast.walk(ast.parse(p.read_text())) "
        "if isinstance(n, (ast.Import, ast.ImportFrom)) and any((getattr(n, 'module', None) or a.name or '')"
        ".split('.')[0] == 'moto' for a in n.names)]; "
        "print('devtools' if u.find_spec('daemon.devtools') else '', *bad)"
    )
    result = _podman("run", "--rm", "--pull=never", "--read-only", "--entrypoint", "python3", image, "-c", probe)
    assert result.stdout.strip() == ""


def test_health_endpoints_answer_from_the_host(running: Container) -> None:
    """/healthz and /readyz answer 200 on the host network once the daemon has started."""
    assert _get(running.port, "/healthz")[0] == 200
    status, body = _get(running.port, "/readyz")
    assert status == 200
    assert json.loads(body)["ok"] is True


def test_daemon_is_pid_1_as_uid_10001(running: Container) -> None:
    """The container's PID 1 is the rotaudit process itself, running as UID and GID 10001."""
    host_pid = int(running.inspect("{{.State.Pid}}"))
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{host_pid}/status").read_text().splitlines() if ":" in line
    )
    assert status["NSpid"].split()[-1] == "1"
    assert set(status["Uid"].split()) == {str(UID)}
    assert set(status["Gid"].split()) == {str(UID)}
    argv = Path(f"/proc/{host_pid}/cmdline").read_bytes().split(b"\0")
    assert b"/opt/rotaudit/bin/rotaudit" in argv
    assert b"run" in argv


def test_root_filesystem_is_read_only_even_tmp(running: Container) -> None:
    """Nothing is writable in the running container, /tmp included, and the daemon still serves."""
    assert running.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    for path in ("/opt/rotaudit/probe", "/tmp/probe"):  # noqa: S108 (paths inside the container, never written)
        result = _podman("exec", running.name, "python3", "-c", f"open({path!r}, 'w')", check=False)
        assert result.returncode != 0
        assert "Read-only file system" in result.stderr
    assert _get(running.port, "/healthz")[0] == 200


def test_healthcheck_command_reports_healthy(running: Container) -> None:
    """The image's HEALTHCHECK command, run by podman inside the container, passes against /healthz."""
    result = _podman("healthcheck", "run", running.name, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_audits_an_event(running: Container, emulator: Emulator, module_stack: dict[str, str]) -> None:
    """An event put on the queue is recorded in the audit table by the daemon in the container."""
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:container/{uuid.uuid4().hex[:8]}-AbCdEf"
    event = build_event("RotationSucceeded", arn)
    boto("sqs", emulator.endpoint_url).send_message(QueueUrl=module_stack["queue_url"], MessageBody=json.dumps(event))
    table = boto("dynamodb", emulator.endpoint_url)

    def recorded() -> list[dict[str, dict[str, str]]]:
        items: list[dict[str, dict[str, str]]] = table.query(
            TableName=module_stack["table_name"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"secret#{arn}"}},
        )["Items"]
        return items

    items = wait_until(recorded, timeout_s=30, interval_s=0.25)
    assert [item["event_name"]["S"] for item in items] == ["RotationSucceeded"]


def test_sigterm_exits_0_within_5_seconds(start: Callable[[], Container]) -> None:
    """SIGTERM reaches the daemon as PID 1, which drains and exits 0 within 5 s (ECS then never SIGKILLs)."""
    container = start()
    container.wait_ready()
    began = time.monotonic()
    _podman("kill", "--signal", "TERM", container.name)
    waited = _podman("wait", container.name, timeout_s=5)
    elapsed_s = time.monotonic() - began
    assert waited.stdout.strip() == "0", container.logs()[-3000:]
    assert elapsed_s < 5
    events = [json.loads(line)["event"] for line in container.logs().splitlines() if line.startswith("{")]
    assert events[-1] == "daemon.stopped"
