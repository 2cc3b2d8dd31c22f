"""``benchmarks/duplicates.py`` runs as a user runs it: every platform's rows, its exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "duplicates.py"
PLATFORMS = ("post-api", "tiktok", "vimeo", "youtube", "instagram", "x")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH), "--jobs", "2", *args],
                          capture_output=True, text=True, timeout=240, check=False)  # fmt: skip


def test_every_platform_has_its_steadypost_and_naive_rows_and_steadypost_is_exact() -> None:
    done = run("--posts", "12")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {tuple(line.split()[:2]) for line in done.stdout.splitlines() if line.strip()}
    for platform in PLATFORMS:
        assert (platform, "steadypost") in rows
        assert (platform, "naive") in rows
    [nokeys] = [line for line in done.stdout.splitlines() if "platform ignores keys" in line]
    assert nokeys.split()[0] == "post-api"


def test_the_counts_come_from_the_simulators() -> None:
    # Every post's publish (or last chunk) is done but answered 500: the naive client posts
    # each video twice, steadypost once.
    mix = "post-api.processed_500=1,tiktok.last_chunk_500=1,x.create_500=1"
    done = run("--posts", "6", "--platforms", "post-api,tiktok,x", "--runs", "steadypost,naive",
               "--mix", mix, "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["by_platform"]
    assert set(figures) == {"post-api", "tiktok", "x"}
    for platform in figures.values():
        assert platform["steadypost"] | {"hours": 0} == {
            "posts": 6, "duplicates": 0, "lost": 0, "resolved": 6, "unresolved": 0,
            "requests": platform["steadypost"]["requests"], "hours": 0}  # fmt: skip
        assert platform["naive"]["duplicates"] == 6
        assert platform["naive"]["lost"] == 0


def test_a_post_steadypost_leaves_unsettled_makes_the_exit_status_1() -> None:
    done = run("--posts", "3", "--platforms", "post-api", "--runs", "steadypost",
               "--mix", "slow=1", "--max-hours", "0.01", "--json")  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["by_platform"]["post-api"]["steadypost"]["unresolved"] == 3
