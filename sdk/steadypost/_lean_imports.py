"""Keep ``import httpx`` lean in processes that only use the library.

httpx imports its own command-line tool at import time whenever ``click``
and ``rich`` are installed, and they are, for steadypost's CLI. That pulls
in click, rich and pygments: about 5 MiB of memory that an uploader embedded
in a creator tool never uses (measured with ``benchmarks/throughput.py``).
Before httpx is first imported, its CLI module is replaced by a stub that
loads the real one on first use, so ``httpx.main`` still works.
"""

from __future__ import annotations

import sys
import types
from typing import Any

_NAME = "httpx._main"


def _main(*args: Any, **kwargs: Any) -> Any:
    """httpx's command-line entry point, loaded on first use."""
    if sys.modules.get(_NAME) is _stub:
        del sys.modules[_NAME]
    from httpx._main import main

    return main(*args, **kwargs)


_stub = types.ModuleType(_NAME, "Stub for httpx's CLI (see steadypost._lean_imports).")
_stub.main = _main  # type: ignore[attr-defined]

if "httpx" not in sys.modules and _NAME not in sys.modules:
    sys.modules[_NAME] = _stub
