"""Packaging and platforms: the metadata, the license, the systemd unit, and Windows (no fcntl)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
UNIT = ROOT / "examples" / "steadypost.service"


def test_the_metadata_says_what_and_where() -> None:
    project = PYPROJECT["project"]
    classifiers = set(project["classifiers"])
    assert "Typing :: Typed" in classifiers
    assert {"Operating System :: POSIX :: Linux", "Operating System :: MacOS",
            "Operating System :: Microsoft :: Windows"} <= classifiers  # fmt: skip
    low = project["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {low}" in classifiers
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
    assert (ROOT / "sdk" / "steadypost" / "py.typed").exists()
    for requirement in project["dependencies"]:  # every dependency has an upper bound
        assert "<" in requirement or "python_version" in requirement, requirement


def test_the_license_file_is_the_mit_license_the_metadata_names() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "WITHOUT WARRANTY OF ANY KIND" in text


def test_the_readme_names_the_node_version_the_tests_need() -> None:
    import json

    engines = json.loads((ROOT / "tests" / "package.json").read_text())["engines"]["node"]
    wanted = engines.removeprefix(">=").removesuffix(".0")
    assert f"Node.js {wanted} or newer" in (ROOT / "README.md").read_text()
    assert wanted in (ROOT / ".ci" / "run").read_text()


def test_the_unit_runs_the_command_where_pipx_and_uv_install_it() -> None:
    exec_start = next(line for line in UNIT.read_text().splitlines()
                      if line.startswith("ExecStart="))  # fmt: skip
    assert exec_start.startswith("ExecStart=%h/.local/bin/steadypost daemon")
    readme = (ROOT / "README.md").read_text()
    assert "pipx install ." in readme
    assert "uv tool install ." in readme
    assert "%h/.local/bin/steadypost" in readme


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd is not installed here (no systemd-analyze): the unit "
                    "cannot be verified on this machine")  # fmt: skip
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """As installed by pipx or uv: ~/.local/bin/steadypost, in a home of its own."""
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "steadypost").symlink_to(Path(sys.executable).with_name(
        "steadypost"))  # fmt: skip
    (home / "Videos" / "ToPost").mkdir(parents=True)
    unit = tmp_path / "steadypost.service"
    shutil.copy(UNIT, unit)
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, env={**os.environ, "HOME": str(home)}, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "steadypost.service" not in done.stderr  # no complaint about the unit itself
    broken = tmp_path / "broken.service"
    broken.write_text(UNIT.read_text().replace("Type=simple", "Type=sometimes"))
    bad = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True,
                         text=True, env={**os.environ, "HOME": str(home)}, timeout=60)
    assert "Failed to parse service type" in bad.stderr  # the check reads the unit


WITHOUT_FCNTL = textwrap.dedent("""
    import sys
    sys.modules["fcntl"] = None          # as on Windows: `import fcntl` fails
    import steadypost.cli.main           # the CLI loads
    from pathlib import Path
    import httpx
    from click.testing import CliRunner
    from steadypost.cli import cli
    from steadypost.cli.app import Runtime
    from steadypost.testing import PlatformSimulator
    sim = PlatformSimulator()
    client = httpx.Client(transport=sim.transport())
    runtime = Runtime(clock=sim.clock.now, uploader_options={"client": client,
                                                             "sleep": sim.clock.sleep})
    video = Path(sys.argv[1])
    video.write_bytes(b"x" * 100_000)
    def run(*args):
        result = CliRunner().invoke(cli, list(args), obj=runtime)
        print(args[0], result.exit_code, (result.stdout + result.stderr).strip().splitlines()[-1:])
    run("upload", str(video), "-e", "https://platform.test/files/")
    run("list")
    run("status")
    run("resume")
    run("daemon", "--once")
    print("fcntl" in sys.modules and sys.modules["fcntl"] is None)
""")


def test_without_fcntl_the_cli_works_and_the_daemon_refuses_clearly(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_FCNTL, str(tmp_path / "clip.mp4")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("upload 0 ['1 post in")
    assert "1 confirmed" in lines[0]
    assert lines[1].startswith("list 0")
    assert lines[2].startswith("status 0")
    assert lines[3].startswith("resume 0")
    assert lines[4].startswith("daemon 1")
    assert "needs POSIX file locks (fcntl)" in lines[4]
    assert "Task Scheduler" in lines[4]
    assert lines[5] == "True"
