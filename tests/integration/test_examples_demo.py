"""examples/demo.py: the library-level outage rehearsal still runs and matches the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_library_demo_runs_and_the_copy_matches() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "server busy (503)" in proc.stderr
    assert "matches the file" in proc.stderr
    assert proc.stdout.strip().startswith("http://127.0.0.1:")
