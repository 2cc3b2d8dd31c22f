"""The library does not load httpx's CLI (click, rich, pygments) just by being imported."""

from __future__ import annotations

import subprocess
import sys


def test_import_steadypost_leaves_out_httpx_cli() -> None:
    code = (
        "import sys, steadypost, httpx\n"
        "print(sorted(m for m in ('click', 'rich', 'pygments') if m in sys.modules))\n"
        "print(callable(httpx.main))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]
