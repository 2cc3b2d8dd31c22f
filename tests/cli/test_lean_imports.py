"""What loads when: the library without httpx's CLI; the CLI's everyday commands without httpx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_import_steadypost_leaves_out_httpx_cli() -> None:
    code = (
        "import sys, steadypost, httpx\n"
        "print(sorted(m for m in ('click', 'rich', 'pygments') if m in sys.modules))\n"
        "print(callable(httpx.main))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]


# --- start-up: what `steadypost list`, `status` and `--help` load (benchmarks/startup.py times it)

HEAVY = ("httpx", "rich", "asyncio", "ssl", "keyring", "tomllib", "platformdirs", "hashlib",
         "socket", "steadypost.client", "steadypost.platforms", "steadypost.daemon.runner",
         "steadypost.cli.config", "steadypost.cli.progress")  # fmt: skip


def _loaded_by(args: list[str], env: dict[str, str]) -> list[str]:
    code = (
        "import importlib, io, sys\n"
        "main = importlib.import_module('steadypost.cli.main').main\n"
        "out, sys.stdout = sys.stdout, io.StringIO()\n"
        f"code = main({args!r})\n"
        "sys.stdout = out\n"
        f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)  # fmt: skip
    return done.stdout.split(maxsplit=1)


@pytest.mark.parametrize("args", [["--help"], ["list"], ["status"], ["list", "--json"]])
def test_the_commands_people_run_most_start_without_the_heavy_modules(
    args: list[str], tmp_path: Path
) -> None:
    """No httpx, rich, platform adapters or config parser: only click, the journal, stdlib.

    $HOME is a fresh one (no $STEADYPOST_HOME): the journal is found where a user's is.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEADYPOST_", "XDG_"))}
    env["HOME"] = str(tmp_path)
    code, loaded = _loaded_by(args, env)
    assert code == "0"
    assert loaded.strip() == "[]"


def test_the_help_lists_every_command_with_its_own_line() -> None:
    """``--help`` prints each command's line from COMMANDS without importing it: they agree."""
    from steadypost.cli.main import COMMANDS, load_command

    for name, (_, line) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name or name == "list"
        assert command.get_short_help_str(limit=200) == line, name


def test_the_chunk_size_help_names_the_real_default() -> None:
    from steadypost import DEFAULT_CHUNK_SIZE
    from steadypost.cli.config import parse_size
    from steadypost.cli.options import DEFAULT_CHUNK_TEXT

    assert parse_size(DEFAULT_CHUNK_TEXT) == DEFAULT_CHUNK_SIZE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the shortcut is Linux's")
@pytest.mark.parametrize("xdg", [None, "", "relative/dir", "/abs/xdg"])
@pytest.mark.parametrize("home", ["/home/creator", "/home/creator/", "/"])
def test_the_linux_data_and_config_dirs_are_platformdirs_own(
    monkeypatch: pytest.MonkeyPatch, xdg: str | None, home: str
) -> None:
    """steadypost.paths finds the folders without importing platformdirs; the same ones."""
    import platformdirs

    from steadypost import paths

    monkeypatch.delenv("STEADYPOST_HOME", raising=False)
    monkeypatch.delenv("STEADYPOST_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", home)
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        if xdg is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, xdg)
    assert paths.data_dir() == Path(platformdirs.user_data_dir("steadypost", appauthor=False))
    assert paths.config_dir() == Path(platformdirs.user_config_dir("steadypost", appauthor=False))


def test_shell_completion_works_as_the_readme_says(tmp_path: Path) -> None:
    """``eval "$(_STEADYPOST_COMPLETE=bash_source steadypost)"`` and what it then completes."""
    script = Path(sys.executable).with_name("steadypost")
    base = {**os.environ, "HOME": str(tmp_path)}
    source = subprocess.run([str(script)], env={**base, "_STEADYPOST_COMPLETE": "bash_source"},
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "_steadypost_completion" in source.stdout
    done = subprocess.run([str(script)], capture_output=True, text=True, check=True, env={
        **base, "_STEADYPOST_COMPLETE": "bash_complete", "COMP_WORDS": "steadypost lo",
        "COMP_CWORD": "1"})  # fmt: skip
    assert done.stdout.split() == ["plain,login", "plain,logout"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert 'eval "$(_STEADYPOST_COMPLETE=bash_source steadypost)"' in readme
