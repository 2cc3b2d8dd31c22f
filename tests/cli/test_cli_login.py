"""``login``/``logout``, and where a token comes from (keyrings.alt's file keyring in tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import ENDPOINT, Cli
from test_cli import app as app  # the fixtures, shared

from steadypost.cli.config import ENV_TOKEN, load_config, resolve
from steadypost.cli.hints import refused_line
from steadypost.models import FileIdentity, Post, PostState
from steadypost.paths import config_dir

CONFIG = """# my settings, keep this comment
default_profile = "travel"

[profiles.travel]
chunk_size = "16MiB"   # big chunks at home
"""


def _config() -> Path:
    return config_dir() / "config.toml"


def test_login_keeps_the_rest_of_config_toml_and_the_token_in_the_keyring(app: Cli) -> None:
    _config().parent.mkdir(parents=True, exist_ok=True)
    _config().write_text(CONFIG)
    from click.testing import CliRunner

    from steadypost.cli import cli
    from steadypost.cli.app import Runtime

    result = CliRunner().invoke(cli, ["login", "--profile", "travel", "-e", ENDPOINT,
                                      "--token-stdin"], input="tok-abc\n",
                                obj=Runtime(clock=app.clock.now))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the token is in the OS keyring (" in result.stderr
    text = _config().read_text()
    assert "# my settings, keep this comment" in text
    assert 'chunk_size = "16MiB"   # big chunks at home' in text
    assert "token_keyring = true" in text
    assert "tok-abc" not in text
    assert _config().stat().st_mode & 0o777 == 0o600
    settings = resolve(load_config(), env={})
    assert settings.headers["Authorization"] == "Bearer tok-abc"
    assert settings.token_source == "the OS keyring (profile 'travel')"
    assert settings.chunk_size == 16 * 1024 * 1024


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """As on a server without a desktop session: keyring's fail backend."""
    import keyring
    from keyring.backends import fail

    kept = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(kept)


@pytest.mark.usefixtures("no_keyring")
def test_without_a_working_keyring_the_token_goes_into_config_toml_and_login_says_so(
    app: Cli,
) -> None:
    from click.testing import CliRunner

    from steadypost.cli import cli
    from steadypost.cli.app import Runtime

    result = CliRunner().invoke(cli, ["login", "-e", ENDPOINT, "--token-stdin"],
                                input="tok-xyz\n", obj=Runtime(clock=app.clock.now))
    assert result.exit_code == 0, result.output
    assert "no OS keyring works here" in result.stderr
    assert f"the token is in {_config()} (readable only by you)" in result.stderr
    assert _config().stat().st_mode & 0o777 == 0o600
    config = load_config()
    assert config.default_profile == "default"
    assert config.profiles["default"].token == "tok-xyz"
    out = CliRunner().invoke(cli, ["logout"], obj=Runtime(clock=app.clock.now))
    assert f"from {_config()}" in out.stderr
    assert load_config().profiles["default"].token is None


def test_a_keyring_profile_without_its_token_says_to_log_in(app: Cli) -> None:
    _config().parent.mkdir(parents=True, exist_ok=True)
    _config().write_text(f'[profiles.travel]\nendpoint = "{ENDPOINT}"\ntoken_keyring = true\n')
    result = app.run("--profile", "travel", "upload", os.devnull)
    assert result.exit_code == 2
    assert ("profile 'travel' keeps its token in the OS keyring, and it has none: run "
            "`steadypost login --profile travel`") in result.stderr


def _refused_post() -> Post:
    return Post("01JD", "tus", ENDPOINT, "/home/me/clip.mp4", FileIdentity(1, 1),
                PostState.FAILED)


@pytest.mark.parametrize(("env", "status", "said"), [
    ({}, 401, "no token was sent (no profile is in use, $STEADYPOST_TOKEN is not set): run "
              "`steadypost login` to save one"),
    ({ENV_TOKEN: "t"}, 401, "it came from $STEADYPOST_TOKEN: set $STEADYPOST_TOKEN to a valid "
                            "token, or unset it and run `steadypost login` to save a new one"),
    ({ENV_TOKEN: "t"}, 403, "(it may lack a scope or access to the account) (403 Forbidden)"),
])  # fmt: skip
def test_a_refusal_says_whether_a_token_went_and_from_where(
    env: dict[str, str], status: int, said: str
) -> None:
    settings = resolve(load_config(), env=env, endpoint=ENDPOINT)
    line = refused_line(_refused_post(), status, settings)
    assert line.startswith("clip.mp4: the server refused ")
    assert said in line, line
