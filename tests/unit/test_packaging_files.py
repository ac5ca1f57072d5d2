"""The files a newcomer's machine meets first: the hash-pinned locks, the one version, and shell that runs on a Mac.

The locks are requirements/runtime.txt (what the image installs) and requirements/dev.txt (what `make install`
installs), both written by `make lock`. The shell the make targets run (Makefile, mk/, deploy/, .ci/run) must work
with macOS's bash 3.2 and BSD tools, so GNU-only forms are caught here by reading it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from daemon import __version__
from tests.support import ROOT

RUNTIME = ROOT / "requirements" / "runtime.txt"
DEV = ROOT / "requirements" / "dev.txt"
DEV_ONLY = ("moto", "pytest", "pytest-asyncio", "hypothesis", "ruff", "mypy", "pyyaml")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?: ;[^\\]*)? \\$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, str]:
    """name → version for each requirement in a lock; fails on a line that is neither a pin, a hash nor a comment."""
    pins: dict[str, str] = {}
    lines = lock.read_text().splitlines()
    for number, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#") or line.lstrip().startswith("--hash=sha256:"):
            continue
        match = PIN.match(line)
        assert match, f"{lock.name}:{number + 1}: not an exact pin followed by hashes: {line!r}"
        assert lines[number + 1].lstrip().startswith("--hash=sha256:"), f"{lock.name}:{number + 1}: no hash"
        pins[_canonical(match["name"])] = match["version"]
    return pins


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_canonical(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]) for requirement in requirements}


def _pyproject() -> dict[str, dict[str, object]]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_every_lock_line_is_an_exact_pin_with_hashes() -> None:
    """Both locks pin each package with == and at least one sha256 hash, so pip --require-hashes accepts them."""
    assert _pins(RUNTIME)
    assert _pins(DEV)


def test_runtime_lock_holds_the_dependencies_and_no_dev_tool() -> None:
    """runtime.txt pins every dependency pyproject.toml names and none of the dev extras."""
    project = _pyproject()["project"]
    runtime = _pins(RUNTIME)
    assert isinstance(project["dependencies"], list)
    assert _requirement_names(project["dependencies"]) <= runtime.keys()
    assert [name for name in DEV_ONLY if name in runtime] == []


def test_dev_lock_holds_the_runtime_pins_unchanged() -> None:
    """dev.txt pins every runtime package at the same version, plus the dev extras: the tests run what ships."""
    runtime, dev = _pins(RUNTIME), _pins(DEV)
    assert {name: dev.get(name) for name in runtime} == runtime
    optional = _pyproject()["project"]["optional-dependencies"]
    assert isinstance(optional, dict)
    assert _requirement_names(optional["dev"]) <= dev.keys()


def test_version_has_one_place() -> None:
    """pyproject.toml reads the version from daemon.__version__ and states none of its own."""
    pyproject = _pyproject()
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]  # type: ignore[operator]
    assert pyproject["tool"]["setuptools"]["dynamic"] == {"version": {"attr": "daemon.__version__"}}  # type: ignore[index]
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


SHELL_FILES = sorted(
    [ROOT / "Makefile", ROOT / ".ci" / "run", *ROOT.glob("mk/*"), *ROOT.glob("deploy/**/*.sh")], key=str
)

# (GNU-only form, a fallback whose presence in the same file makes it fine, why).
GNU_ONLY = [
    (r"\bsha1sum\b", r"shasum -a 1", "macOS has no sha1sum: fall back to shasum -a 1, or use cksum"),
    (r"\b(md5sum|sha256sum)\b", None, "not on macOS: use cksum or shasum"),
    (r"xargs\b[^|]*(--no-run-if-empty|\s-r\b)", None, "BSD xargs has no -r: read the list in a while loop"),
    (r"\bsed\s+(-[a-zA-Z]*i|--in-place)", None, "sed -i takes a suffix argument on BSD: write a new file instead"),
    (r"\breadlink\s+-f\b", None, 'not on older macOS: cd "$(dirname ...)" && pwd'),
    (r"\bdate\s+(-d|--date)\b", None, "GNU date only"),
    (r"\bgrep\s+(-[a-zA-Z]*P|--perl)", None, "BSD grep has no -P: use grep -E"),
    (r"\bstat\s+(-c|--format)\b", None, "GNU stat only"),
    (r"\bmktemp\b[^\n]*(--tmpdir|--suffix|\s-p\s)", None, "GNU mktemp only: give a template path"),
    (r"\bsed\b[^\n]*\\\|", None, "\\| alternation in a basic regex is GNU sed only: use grep -E or sed -E"),
    (r"\$\{EPOCHREALTIME\b", r"\$\{EPOCHREALTIME:-\}", "bash 3.2 has no EPOCHREALTIME: guard it, ${EPOCHREALTIME:-}"),
    (r"\b(mapfile|readarray)\b|declare\s+-A\b|\$\{\w+(,,|\^\^)", None, "bash 4 only; macOS ships bash 3.2"),
]


@pytest.mark.parametrize(("pattern", "fallback", "why"), GNU_ONLY, ids=[rule[0] for rule in GNU_ONLY])
def test_shell_uses_no_gnu_only_form(pattern: str, fallback: str | None, why: str) -> None:
    """No make recipe or script uses a form that fails on macOS, unless its file also has the portable fallback."""
    assert SHELL_FILES
    offenders = []
    for path in SHELL_FILES:
        text = path.read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        if re.search(pattern, code) and not (fallback and re.search(fallback, code)):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], why
