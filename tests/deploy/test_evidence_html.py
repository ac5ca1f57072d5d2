"""The evidence HTML in a real browser: headless Chromium (Debian's `chromium`) renders it, prints it, and shows the
figures the JSON output holds. Run by `make test-evidence` (mk/evidence.mk), which installs Chromium when missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_scan_cli import cli
from tests.support.evidence import SINCE, UNTIL, Figures, write_history

pytestmark = pytest.mark.deploy
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or ""


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium; no sandbox, as the tests may run as root in a container (Chromium refuses otherwise)."""
    flags = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run")
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture
def report(endpoint: str, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """The fixture history's JSON output, and its HTML output written to a file."""
    if not CHROMIUM:
        pytest.skip("chromium is not installed (make test-evidence installs it)")
    table = f"evd{uuid.uuid4().hex[:10]}-audit"
    write_history(endpoint, table)
    period = ("--since", SINCE, "--until", UNTIL)
    made = cli(endpoint, table, "evidence", *period, "--output", "json")
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    html = tmp_path / "evidence.html"
    made = cli(endpoint, table, "evidence", *period, "--output", "html", "--file", str(html))
    assert made.returncode == 0, made.stderr
    return doc, html


def test_chromium_shows_the_json_figures(report: tuple[dict[str, Any], Path]) -> None:
    """The DOM Chromium builds holds the JSON's fleet figures, each secret's row and one bar per recovered failure."""
    doc, html = report
    dom = chromium("--dump-dom", html.as_uri()).stdout
    page = Figures()
    page.feed(dom)
    fleet = doc["fleet"]
    for key in ("secrets", "secrets_ever_out_of_compliance", "rotations_started", "rotations_failed", "scan_runs"):
        assert float(page.figures[key]) == fleet[key]
    assert float(page.figures["compliant_share"]) == fleet["compliant_share"]
    assert page.figures["manifest_sha256"] == doc["manifest"]["sha256"]
    secrets = doc["secrets"]
    assert list(page.rows) == [s["secret_name"] for s in secrets]
    for secret in secrets:
        row = page.rows[secret["secret_name"]]
        assert float(row["rotations_failed"]) == secret["rotations_failed"]
        assert float(row["max_over_age_days"]) == secret["max_over_age_days"]
        assert float(row["compliant_share"]) == secret["compliant_share"]
    assert dom.count('data-label="bravo 07-03"') == 1  # the one recovered failure's bar


def test_chromium_renders_and_prints_it(report: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    """A screenshot and a PDF come out of the self-contained page (no network asset to wait for)."""
    _, html = report
    png, pdf = tmp_path / "evidence.png", tmp_path / "evidence.pdf"
    chromium(f"--screenshot={png}", "--window-size=1000,1700", html.as_uri())
    chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", html.as_uri())
    if target := os.environ.get("EVIDENCE_SCREENSHOT"):  # the README's screenshot: make test-evidence EVIDENCE_...
        shutil.copyfile(png, target)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 5_000
    assert "http" not in html.read_text().replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
