"""The wheel is the product: it leaves the dev tools (daemon/devtools/, moto) out, and still runs without them.

The wheel is built from a copy of what the image's build context holds, plus daemon/devtools/ (so the exclusion in
pyproject.toml is what keeps it out), with pip's isolated build as the Dockerfile's `pip install /src` does. It is
installed as in the image: the runtime lock with its hashes checked (requirements/runtime.txt), then the wheel
without dependencies, into a fresh venv. An editable install, what `make install` does, must still find the dev
tools.
"""

from __future__ import annotations

import ast
import email
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from daemon import __version__
from daemon.errors import EXIT_FAILURE
from tests.support import ROOT

pytestmark = pytest.mark.slow

PIP_TIMEOUT_S = 600  # a cold pip cache downloads boto3, aiobotocore and aiohttp
RUN_TIMEOUT_S = 60


def _env() -> dict[str, str]:
    """This environment without anything that would put the checkout on a child's import path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _run(argv: list[str | Path], cwd: Path, timeout_s: float = PIP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout_s, check=False
    )


def _new_venv(path: Path) -> Path:
    """A fresh venv with pip; returns its bin/ directory."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean copy of the package's sources (no egg-info or build/ left over from the checkout's own installs)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "daemon", src / "daemon", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert (src / "daemon" / "devtools" / "emulator.py").is_file()
    return src


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the clean copy."""
    out = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, source], cwd=out)
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("rotaudit-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the wheel and its runtime dependencies only (no extras: no moto), as the image."""
    bin_dir = _new_venv(tmp_path_factory.mktemp("venv") / "venv")
    lock = ROOT / "requirements" / "runtime.txt"
    pip = [bin_dir / "python", "-m", "pip", "install", "--quiet"]
    done = _run([*pip, "--require-hashes", "-r", lock], cwd=wheel.parent)
    assert done.returncode == 0, done.stderr
    done = _run([*pip, "--no-deps", wheel], cwd=wheel.parent)
    assert done.returncode == 0, done.stderr
    return bin_dir


def test_wheel_metadata_names_version_licence_and_project(wheel: Path) -> None:
    """The wheel's version is daemon.__version__, its licence Apache-2.0 with the text inside, its URLs ours."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        licence_texts = [archive.read(name) for name in names if name.endswith(".dist-info/licenses/LICENSE")]
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert licence_texts == [(ROOT / "LICENSE").read_bytes()]
    assert "Source, https://github.com/rotaudit/rotaudit" in metadata.get_all("Project-URL", [])


def test_wheel_holds_the_package_but_not_the_dev_tools(wheel: Path) -> None:
    """The wheel holds the CLI and the daemon but no file under daemon/devtools/."""
    names = zipfile.ZipFile(wheel).namelist()
    assert {"daemon/__init__.py", "daemon/app.py", "daemon/cli/__init__.py"} <= set(names)
    assert [name for name in names if name.startswith("daemon/devtools/")] == []


def test_no_module_in_the_wheel_imports_moto(wheel: Path) -> None:
    """No .py file in the wheel imports moto, at the top or inside a function."""
    offenders = []
    with zipfile.ZipFile(wheel) as archive:
        sources = [name for name in archive.namelist() if name.endswith(".py")]
        assert sources
        for name in sources:
            for node in ast.walk(ast.parse(archive.read(name), filename=name)):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                offenders += [(name, module) for module in modules if module.split(".")[0] == "moto"]
    assert offenders == []


def test_installed_wheel_runs_without_dev_tools(installed: Path, tmp_path: Path) -> None:
    """`rotaudit --help` exits 0 from the wheel, with neither daemon.devtools nor moto importable."""
    done = _run([installed / "rotaudit", "--help"], cwd=tmp_path, timeout_s=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    probe = "import importlib.util as u; print(u.find_spec('daemon.devtools'), u.find_spec('moto'))"
    found = _run([installed / "python", "-c", probe], cwd=tmp_path, timeout_s=RUN_TIMEOUT_S)
    assert found.stdout.split() == ["None", "None"], found.stderr


def test_installed_wheel_local_says_how_to_get_dev_tools(installed: Path, tmp_path: Path) -> None:
    """`rotaudit local` from the wheel exits EXIT_FAILURE and says on stderr to install from a checkout."""
    done = _run([installed / "rotaudit", "local", "--port", "0"], cwd=tmp_path, timeout_s=RUN_TIMEOUT_S)
    assert done.returncode == EXIT_FAILURE
    assert "pip install -e" in done.stderr
    assert "Traceback" not in done.stderr


def test_editable_install_still_finds_the_dev_tools(source: Path, tmp_path: Path) -> None:
    """An editable install (what `make install` does) imports daemon.devtools from the source tree it points at."""
    bin_dir = _new_venv(tmp_path / "venv")
    done = _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-deps", "-e", source], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # The emulator's imports are the standard library and daemon.errors: no dependency needs installing.
    probe = (
        "import importlib.util as u, daemon.devtools.emulator as e; "
        "print(e.__file__, u.find_spec('daemon.devtools.local') is not None)"
    )
    found = _run([bin_dir / "python", "-c", probe], cwd=tmp_path, timeout_s=RUN_TIMEOUT_S)
    assert found.returncode == 0, found.stderr
    emulator_file, finds_local = found.stdout.split()
    assert Path(emulator_file).resolve() == (source / "daemon" / "devtools" / "emulator.py").resolve()
    assert finds_local == "True"
