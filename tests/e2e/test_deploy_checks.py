"""mk/deploy-checks.sh: a laptop skips the deploy checks it cannot run and says how; CI and root Debian skip nothing.

The script runs as `make test` runs it, on a machine played by its documented test inputs: ROTAUDIT_DEPLOY_UID,
ROTAUDIT_DEPLOY_KERNEL and ROTAUDIT_DEPLOY_DEBIAN_FILE stand in for `id -u`, `uname -s` and /etc/debian_version,
and PATH holds only the basic tools it needs plus whichever deploy tools a case gives it (stubs). MAKE is a stub
that records the targets it was asked to run, so what ran and what was skipped is read from its log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT

SCRIPT = ROOT / "mk" / "deploy-checks.sh"
TARGETS = ("test-container", "test-evidence", "test-monitoring", "test-terraform")
BASICS = ("bash", "dirname", "sed", "id", "uname")  # what the script and `deploy/local.sh tools` call
TIMEOUT_S = 60

STUB_MAKE = """#!/bin/bash
echo "$*" >>"$MAKE_LOG"
case " $STUB_FAILING " in *" ${@: -1} "*) exit 2 ;; esac
"""


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    made: list[str]  # the targets the script ran through make, in order


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


class Machine:
    """A played machine: a bin/ folder for PATH, the identity the script sees, and a run of the script on it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool in BASICS:
            found = shutil.which(tool)
            assert found, tool
            (self.bin / tool).symlink_to(found)
        self.stub("make", STUB_MAKE)
        self.env = {
            "PATH": str(self.bin),
            "HOME": str(tmp_path / "home"),
            "MAKE": str(self.bin / "make"),
            "MAKE_LOG": str(tmp_path / "make.log"),
            "STUB_FAILING": "",
            "PROMTOOL": str(tmp_path / "cache" / "promtool"),  # where the Makefile would fetch it: not there
            "PROMETHEUS": str(tmp_path / "cache" / "prometheus"),
            "ROTAUDIT_DEPLOY_DEBIAN_FILE": str(tmp_path / "debian_version"),
        }

    def stub(self, name: str, text: str = "#!/bin/bash\nexit 0\n") -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def mac_laptop(self) -> None:
        self.env |= {"ROTAUDIT_DEPLOY_UID": "501", "ROTAUDIT_DEPLOY_KERNEL": "Darwin"}

    def root_debian(self) -> None:
        self.env |= {"ROTAUDIT_DEPLOY_UID": "0", "ROTAUDIT_DEPLOY_KERNEL": "Linux"}
        (self.tmp / "debian_version").write_text("12.8\n")

    def run(self, *args: str) -> Run:
        done = subprocess.run(
            ["/usr/bin/env", "bash", str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        log = Path(self.env["MAKE_LOG"])
        made = [line.split()[-1] for line in log.read_text().splitlines()] if log.exists() else []
        return Run(done.returncode, done.stdout, done.stderr, made)


def _skipped(run: Run) -> list[str]:
    return [line.split()[1] for line in run.stdout.splitlines() if line.startswith("skipped: ")]


def test_mac_laptop_skips_every_deploy_check_and_says_how(machine: Machine) -> None:
    """A Mac with no deploy tools runs no deploy check, exits 0, and names each skip's need and how to run it."""
    machine.mac_laptop()
    run = machine.run("--ran", "pytest", *TARGETS)
    assert run.code == 0, run.stderr
    assert run.made == []
    assert _skipped(run) == list(TARGETS)
    summary = run.stdout.split("summary:")[1]
    assert "passed   pytest" in summary
    for target in TARGETS:
        assert f"skipped  {target}: needs " in summary
    assert summary.count("run it with: ") == len(TARGETS)
    assert "make test-container" in summary


def test_laptop_runs_the_checks_whose_tools_it_has(machine: Machine) -> None:
    """With Prometheus (promtool and the server), terraform and a provider mirror on a non-root Linux laptop, the
    container and Chromium's checks are skipped."""
    machine.env |= {"ROTAUDIT_DEPLOY_UID": "1000", "ROTAUDIT_DEPLOY_KERNEL": "Linux"}
    machine.stub("promtool")
    machine.stub("prometheus")
    machine.stub("terraform", "#!/bin/bash\necho 'Terraform v1.14.0'\n")
    mirror = machine.tmp / "mirror"
    (mirror / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    machine.env["TF_PLUGIN_DIR"] = str(mirror)
    run = machine.run(*TARGETS)
    assert run.code == 0, run.stderr
    assert run.made == ["test-monitoring", "test-terraform"]
    assert _skipped(run) == ["test-container", "test-evidence"]
    assert "needs root" in run.stdout


def test_promtool_without_the_prometheus_server_skips_the_monitoring_check(machine: Machine) -> None:
    """test-monitoring also runs the rules in a real Prometheus: promtool alone is not enough, and the skip says so."""
    machine.env |= {"ROTAUDIT_DEPLOY_UID": "1000", "ROTAUDIT_DEPLOY_KERNEL": "Linux"}
    machine.stub("promtool")
    run = machine.run("test-monitoring")
    assert run.code == 0, run.stderr
    assert run.made == []
    assert _skipped(run) == ["test-monitoring"]
    assert "prometheus" in run.stdout.split("summary:")[1]


def test_ci_skips_nothing_and_a_missing_tool_fails(machine: Machine) -> None:
    """With CI=true the same bare laptop runs every check; the one that fails makes the run fail, the rest still run."""
    machine.mac_laptop()
    machine.env |= {"CI": "true", "STUB_FAILING": "test-container"}
    run = machine.run(*TARGETS)
    assert run.code == 1
    assert run.made == list(TARGETS)
    assert _skipped(run) == []
    assert "FAILED   test-container" in run.stdout
    assert "passed   test-terraform" in run.stdout
    assert "nothing is skipped" in run.stderr


def test_root_debian_skips_nothing(machine: Machine) -> None:
    """As root on Debian, with no CI variable and no deploy tool yet, every check runs (make installs the tools)."""
    machine.root_debian()
    run = machine.run(*TARGETS)
    assert run.code == 0, run.stderr
    assert run.made == list(TARGETS)
    assert _skipped(run) == []


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_ci_false_is_not_ci(machine: Machine, value: str) -> None:
    """CI set to false, 0 or nothing leaves a laptop a laptop: its checks are skipped."""
    machine.mac_laptop()
    machine.env["CI"] = value
    run = machine.run(*TARGETS)
    assert run.code == 0, run.stderr
    assert _skipped(run) == list(TARGETS)


def test_unknown_target_is_an_error(machine: Machine) -> None:
    """A deploy target without a capability check stops the run with exit 64 instead of being skipped silently."""
    machine.mac_laptop()
    run = machine.run("test-something-new")
    assert run.code == 64
    assert "need_test_something_new" in run.stderr


def test_make_test_deploy_runs_every_deploy_target_through_the_script() -> None:
    """`make -n test-deploy` hands mk/deploy-checks.sh every target the mk/*.mk files add to DEPLOY_TESTS."""
    if shutil.which("make") is None:
        pytest.fail("make is not on PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(
        ["make", "-n", "test-deploy"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "mk/deploy-checks.sh" in line]
    assert line.split("mk/deploy-checks.sh")[1].split() == sorted(TARGETS)
