"""Which journal a command uses: ``--journal``, ``$STEADYPOST_JOURNAL``, a profile's ``journal``.

The flag wins over the environment, which wins over the profile, which wins over the
default file in ``$STEADYPOST_HOME`` (the CLI's usual order). A PostgreSQL URL works
for every command; ``status`` then lists the fleet's workers.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from steadypost import FileIdentity, Journal
from steadypost.cli import cli
from steadypost.paths import config_dir, default_journal_path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def add_one(target: str | Path, name: str) -> str:
    with Journal(target) as journal:
        return journal.add(path=f"/v/{name}.mp4", endpoint="https://e/files/",
                           identity=FileIdentity(10, 1)).post_id  # fmt: skip


def listed(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [json.loads(line)["post_id"] for line in result.stdout.splitlines()]


def test_flag_then_environment_then_profile_then_the_default_file(tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.sqlite3" for name in ("flag", "env", "profile")}
    ids = {name: add_one(path, name) for name, path in files.items()}
    ids["default"] = add_one(default_journal_path(), "default")
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "config.toml").write_text(
        f'default_profile = "fleet"\n[profiles.fleet]\njournal = "{files["profile"]}"\n'
    )
    env = {"STEADYPOST_JOURNAL": str(files["env"])}
    assert listed(run("--journal", str(files["flag"]), "list", "--json", env=env)) == [ids["flag"]]
    assert listed(run("list", "--json", "--journal", str(files["flag"]))) == [ids["flag"]]
    assert listed(run("list", "--json", env=env)) == [ids["env"]]
    assert listed(run("list", "--json")) == [ids["profile"]]
    (config_dir() / "config.toml").unlink()
    assert listed(run("list", "--json")) == [ids["default"]]


def test_a_profile_journal_must_be_a_string(tmp_path: Path) -> None:
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "config.toml").write_text("[profiles.x]\njournal = 5\n")
    result = run("--profile", "x", "list")
    assert result.exit_code == 2
    assert "journal must be a string" in result.output


def test_status_on_a_postgresql_journal_lists_its_workers(pg_url: str) -> None:
    add_one(pg_url, "queued")
    with Journal(pg_url) as journal:
        journal.register_worker("render-2", process="render:977:0123456789abcdef", lease_s=30)
    result = run("--journal", pg_url, "status")
    assert result.exit_code == 0, result.output
    assert "1 worker(s) alive on 1 host(s)" in result.stdout
    assert "render-2 on render (pid" in result.stdout
    assert f"journal  {pg_url}" in result.stdout
    record = json.loads(run("status", "--json", "--journal", pg_url).stdout)
    assert record["shared"] is True
    assert [(w["name"], w["host"], w["state"]) for w in record["workers"]] == [
        ("render-2", "render", "alive")]
    assert record["counts"]["queued"] == 1
