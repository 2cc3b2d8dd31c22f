"""How long ``steadypost --help``, ``list`` and ``status`` take to start, beside ``import click``.

Each command runs as its own process, the way a creator types it (the ``steadypost``
console script of this interpreter's environment), ``--runs`` times; the table gives the
median wall time, the fastest, and the ratio to the baseline ``python3 -c "import click"``
on the same interpreter (the goal: at most 2x). ``python -c pass`` is shown too: the cost
of Python itself, which no command can go below.

``list`` and ``status`` read a journal made for the run holding ``--posts`` posts in mixed
states, so they print a real table. It is where a user's is (the platform's data folder,
found by platformdirs) under a temporary ``$HOME``: no ``$STEADYPOST_HOME`` shortcut.

    python benchmarks/startup.py
    python benchmarks/startup.py --runs 40 --posts 200
    python benchmarks/startup.py --json
    python benchmarks/startup.py --importtime list   # which imports cost (python -X importtime)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.0


def steadypost_command() -> list[str]:
    """The console script beside this interpreter, else ``python -m steadypost``."""
    script = Path(sys.executable).with_name("steadypost")
    return [str(script)] if script.exists() else [sys.executable, "-m", "steadypost"]


def user_env(home: Path) -> dict[str, str]:
    """This environment as a user's whose home is ``home`` (no steadypost or XDG overrides)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STEADYPOST_", "XDG_")) and k not in ("COLUMNS", "LINES")
           and k != "PYTHONDONTWRITEBYTECODE"}  # as installed: .pyc files written and used
    return env | {"HOME": str(home), "NO_COLOR": "1"}


def fill_journal(home: Path, posts: int) -> None:
    """``posts`` posts in the journal of a user whose home is ``home``: mixed states."""
    code = f"""
import os, sys
from steadypost import Journal, PostState
from steadypost.journal import make_owner
from steadypost.models import FileIdentity
states = [PostState.CONFIRMED, PostState.WAITING, PostState.QUEUED, PostState.UNCONFIRMED]
with Journal() as journal:
    owner = make_owner()
    for n in range({posts}):
        post = journal.add(path=f"/videos/clip-{{n:04d}}.mp4",
                           endpoint="https://uploads.example.com/files/",
                           identity=FileIdentity(size=10_000_000 + n, mtime_ns=n))
        state = states[n % len(states)]
        if state is PostState.QUEUED:
            continue
        journal.transition(post.post_id, PostState.UPLOADING, owner=owner)
        fields = {{"offset": 4_200_000}} if state is not PostState.CONFIRMED else {{}}
        if state is not PostState.CONFIRMED:
            fields["next_attempt_at"] = journal.get(post.post_id).updated_ts + 180
            fields["last_error"] = "server busy (503)"
        journal.transition(post.post_id, state, owner=owner, **fields)
"""
    subprocess.run([sys.executable, "-c", code], check=True, env=user_env(home))


def timed(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Wall seconds of each command, ``runs`` times, taking turns (a busy moment of the
    machine then slows every command alike, not only the one running)."""
    for argv in commands.values():
        for _ in range(2):  # warm the file cache, and write any missing .pyc, as a first run does
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, check=False)  # fmt: skip
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: "
                                 f"{done.stderr.decode(errors='replace')[-500:]}")  # fmt: skip
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per command (default 30)")
    parser.add_argument("--posts", type=int, default=40, help="posts in the journal (40)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--importtime", metavar="COMMAND",
                        help="print the slowest imports of one command (help, list, status)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="steadypost-startup-"))
    try:
        env = user_env(home)
        fill_journal(home, args.posts)
        sp = steadypost_command()
        commands = {
            'python3 -c "pass"': [sys.executable, "-c", "pass"],
            'python3 -c "import click"': [sys.executable, "-c", "import click"],
            "steadypost --help": [*sp, "--help"],
            "steadypost list": [*sp, "list"],
            "steadypost status": [*sp, "status"],
        }
        if args.importtime:
            argv = commands[f"steadypost {args.importtime}".replace("steadypost help",
                                                                     "steadypost --help")]
            code = ("import sys, runpy; sys.argv = sys.argv[1:]; "
                    "runpy.run_path(sys.argv[0], run_name='__main__')")
            script = argv[0] if argv[0] != sys.executable else None
            run = [sys.executable, "-X", "importtime", "-c", code, *(argv if script else argv[2:])]
            out = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
            rows = [line.split("|") for line in out.stderr.splitlines() if "|" in line][1:]
            rows.sort(key=lambda r: -int(r[1]))  # cumulative, slowest first
            print(f"{'cumulative':>11}  {'self':>9}  module")
            for self_us, total_us, name in rows[:40]:
                own = int(self_us.rsplit(":", 1)[-1])
                print(f"{int(total_us) / 1000:8.1f} ms  {own / 1000:6.1f} ms  {name}")
            return
        results = timed(commands, env, args.runs)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    base = statistics.median(results['python3 -c "import click"'])
    table = [
        {"command": name, "median_ms": round(statistics.median(t) * 1000, 1),
         "fastest_ms": round(min(t) * 1000, 1),
         "vs_import_click": round(statistics.median(t) / base, 2)}
        for name, t in results.items()
    ]  # fmt: skip
    if args.json:
        print(json.dumps({"runs": args.runs, "posts": args.posts, "python": sys.version.split()[0],
                          "goal": GOAL, "results": table}, indent=2))  # fmt: skip
        return
    print(f"start-up, median of {args.runs} runs (Python {sys.version.split()[0]}, "
          f"{args.posts} posts in the journal); goal: at most {GOAL:g}x `import click`\n")
    print(f"{'command':<28}{'median':>10}{'fastest':>10}{'x click':>10}")
    for row in table:
        mark = "" if not row["command"].startswith("steadypost") else (
            "  ok" if row["vs_import_click"] <= GOAL else "  over")  # fmt: skip
        print(f"{row['command']:<28}{row['median_ms']:>8.1f}ms{row['fastest_ms']:>8.1f}ms"
              f"{row['vs_import_click']:>9.2f}x{mark}")


if __name__ == "__main__":
    main()
