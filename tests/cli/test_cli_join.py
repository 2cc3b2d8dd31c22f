"""``upload`` and ``add`` of a file that already has its post join it; ``--new`` posts again.

In process (CliRunner) against the platform simulator, with the helpers of test_cli.py.
The real-process races (two uploads at once, one while another process uploads) are in
test_crash_cli.py.
"""

from __future__ import annotations

from pathlib import Path

from test_cli import ENDPOINT, Cli, json_lines
from test_cli import app as app  # the fixtures, shared
from test_cli import video as video

from steadypost import PostState, RetryPolicy
from steadypost.cli import ExitCode
from steadypost.testing import Outage, ProcessedButTimeout, Respond


def test_a_repeated_upload_says_already_posted_and_sends_nothing(app: Cli, video: Path) -> None:
    first = app.upload(video, extra=("--json",))
    assert first.exit_code == ExitCode.OK, first.output
    [post] = json_lines(first.stdout)
    requests = len(app.sim.requests)
    # Another token for the same site is the same account: a refreshed token posts nothing.
    again = app.run("upload", str(video), "-e", ENDPOINT, "--json",
                    env={"STEADYPOST_TOKEN": "a-new-token"})  # fmt: skip
    assert again.exit_code == ExitCode.OK, again.output
    assert f"already posted: {post['post_id']} confirmed" in again.stderr
    assert [r["post_id"] for r in json_lines(again.stdout)] == [post["post_id"]]
    assert len(app.sim.requests) == requests  # not one request
    assert len(app.posts()) == 1

    new = app.upload(video, extra=("--new",))
    assert new.exit_code == ExitCode.OK, new.output
    assert len(app.posts()) == 2
    assert len(app.sim.uploads) == 2


def test_add_twice_joins_the_queued_post(app: Cli, video: Path) -> None:
    first = app.run("add", str(video), "-e", ENDPOINT, "--json")
    [post] = json_lines(first.stdout)
    again = app.run("add", str(video), "-e", ENDPOINT, "--json")
    assert again.exit_code == 0, again.output
    assert f"joining post {post['post_id']} (queued)" in again.stderr
    assert [r["post_id"] for r in json_lines(again.stdout)] == [post["post_id"]]
    assert len(app.posts()) == 1
    assert app.run("add", str(video), "-e", ENDPOINT, "--new").exit_code == 0
    assert len(app.posts()) == 2


def test_upload_joins_a_waiting_post_and_goes_on_with_it(app: Cli, video: Path) -> None:
    now = app.clock.now()
    app.sim.faults.add(Outage(now, now + 7200, retry_after=600))
    app.options["retry"] = RetryPolicy(deadline_s=1800)
    left = app.upload(video)
    assert left.exit_code == ExitCode.WAITING, left.output
    [waiting] = app.posts()
    assert waiting.state is PostState.WAITING
    app.sim.faults.clear()
    app.clock.advance(700)  # the server asked for 600 s: the host is asked again after that
    again = app.upload(video)
    assert again.exit_code == ExitCode.OK, again.output
    assert f"joining post {waiting.post_id} (waiting, next try at " in again.stderr
    [done] = app.posts()
    assert (done.post_id, done.state) == (waiting.post_id, PostState.CONFIRMED)
    assert len(app.sim.uploads) == 1  # resumed, not begun again


def test_an_unconfirmed_post_is_joined_not_sent_again(app: Cli, video: Path) -> None:
    app.sim.faults.add(
        ProcessedButTimeout(on={"final_patch"}), Respond(status=503, methods={"HEAD"}, times=99)
    )
    app.options["retry"] = RetryPolicy(max_attempts=3, deadline_s=None)
    assert app.upload(video).exit_code == ExitCode.UNCONFIRMED
    [post] = app.posts()
    requests = len(app.sim.requests)
    again = app.upload(video)
    assert again.exit_code == ExitCode.UNCONFIRMED, again.output
    assert f"already posted: {post.post_id} unconfirmed" in again.stderr
    assert len(app.sim.requests) == requests

    # Its check is due later; once due, resume says so and does not exit 0 (verify checks it).
    app.clock.advance(3600)
    resumed = app.run("resume")
    assert resumed.exit_code == ExitCode.UNCONFIRMED, resumed.output
    assert "1 unconfirmed post(s) are due for their check: `steadypost verify`" in resumed.stderr
