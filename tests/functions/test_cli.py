"""``orgbase functions new NAME`` writes a function and a test that passes as written;
``orgbase functions list`` reads the folder without running it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from orgbase.platform.cli import main


def test_new_writes_a_function_and_a_passing_test(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    made = CliRunner().invoke(main, ["functions", "new", "greet", "--dir", str(folder)])
    assert made.exit_code == 0, made.output
    assert (folder / "greet.py").exists()
    assert (folder / "tests" / "test_greet.py").exists()
    again = CliRunner().invoke(main, ["functions", "new", "greet", "--dir", str(folder)])
    assert again.exit_code != 0
    assert "exists already" in again.output
    bad = CliRunner().invoke(main, ["functions", "new", "Bad Name", "--dir", str(folder)])
    assert bad.exit_code != 0

    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "2 passed" in ran.stdout

    listed = CliRunner().invoke(main, ["functions", "list", "--dir", str(folder)])
    assert listed.exit_code == 0
    assert "greet" in listed.output
    assert "members" in listed.output
