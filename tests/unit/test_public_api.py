"""The public surface: every package's ``__all__`` is sorted and names exactly what it exports.

In the manner of httpx's ``test_exported_members``: a name imported into a package for
its users but missing from ``__all__`` (or listed but gone) is caught here.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types

import pytest

PACKAGES = [
    "steadypost",
    "steadypost.testing",
    "steadypost.testing.hostile",
    "steadypost.flow",
    "steadypost.drivers",
    "steadypost.journal",
    "steadypost.hosts",
    "steadypost.lifecycle",
    "steadypost.platforms.tus",
    "steadypost.platforms.tiktok",
    "steadypost.platforms.youtube",
    "steadypost.platforms.instagram",
]


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=isort_key), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    # dir(), not vars(): a package that imports on first use (PEP 562) lists its names there.
    public = {
        member for member in dir(module)
        if not member.startswith("_") and member not in {"annotations", "logging"}
        and not isinstance(getattr(module, member), types.ModuleType)
    }  # fmt: skip
    assert set(exported) == public, (
        f"{name}: not in __all__: {sorted(public - set(exported))}; "
        f"in __all__ but missing: {sorted(set(exported) - public)}"
    )


def test_the_root_package_exports_what_a_creator_tool_needs() -> None:
    import steadypost

    for needed in ("Uploader", "AsyncUploader", "Journal", "Post", "PostState", "RetryPolicy",
                   "SteadypostError", "ConfigurationError", "AddResult"):  # fmt: skip
        assert needed in steadypost.__all__
    assert inspect.isclass(steadypost.Uploader)


def test_importing_the_root_package_loads_no_network_stack() -> None:
    """``import steadypost`` is cheap (the CLI starts from it); names load on first use."""
    code = (
        "import sys, steadypost\n"
        "print(sorted(m for m in ('httpx', 'asyncio', 'sqlite3', 'steadypost.client') "
        "if m in sys.modules))\n"
        "steadypost.Uploader\n"
        "print('steadypost.client' in sys.modules, 'httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    import steadypost

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        steadypost.Nope  # noqa: B018
