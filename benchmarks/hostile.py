"""Hostile servers: what `steadypost upload` and tuspy do to a server that misbehaves.

For each named behaviour of ``steadypost.testing.HostileServer`` (``--only`` to pick some;
``python benchmarks/hostile.py --list`` names them), two runs on the real clock, each
against a fresh server on 127.0.0.1:

``steadypost``
    the real CLI, ``steadypost upload FILE --endpoint URL``, in a subprocess with its own
    empty ``STEADYPOST_HOME`` (default settings: 64 MiB chunks, the default timeouts and
    exchange deadline, retry policy, breaker and budget).
``tuspy``
    ``TusClient(url).uploader(FILE, chunk_size=1 MiB, retries=3, retry_delay=5).upload()``
    in a subprocess: a typical user's settings (tuspy's defaults are no retry, a 30 s
    delay and the whole file in one PATCH; requests has no timeout by default).

Each run gets ``--seconds`` (default 60); a client still running then is sent SIGINT,
and SIGKILL 5 s later. How to read a row:

``req``      requests the server received in the window (``10s``: in its first 10 s);
``amp``      wire amplification: request body bytes the server received / the file size
             (1.0x is one copy; a good citizen stays near 1, under ~2 even when retrying);
``end``      how the client ended: ``exit N`` for the CLI (its documented exit codes:
             0 confirmed, 1 error, 3 unconfirmed, 4 waiting, 5 failed, 130 interrupted),
             ``ok`` or the exception for tuspy; with the time. ``running`` if the window
             ended first, then what SIGINT (Ctrl-C) got: an exit code, or ``killed`` when
             it had not exited 5 s later;
``post``     the post's state in the journal afterwards (``steadypost list --json``);
``bytes``    when the client claimed success: whether the server holds exactly the file
             (SHA-256); ``-`` when it did not claim success;
``auth``     ``SENT`` if any request carried an ``Authorization`` header: neither client is
             given credentials, so one can only come from a server (``location-userinfo``'s
             ``Location: http://user:pass@...``).

A flood shows as thousands of requests and an amplification far above 1; a hang as a
``running`` end with a handful of requests; a lie believed as ``bytes NO``.

    python benchmarks/hostile.py                     # every behaviour, 60 s each, in turn
    python benchmarks/hostile.py --only drip,silent --seconds 30
    python benchmarks/hostile.py --json > hostile.json

Runs go one at a time by default: on a 2-core machine a flooding client and the server's
threads use a core each, so running two at once would cut both floods' request counts.
``--jobs N`` runs N at once anyway (quicker, figures distorted; the table says so).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from steadypost.testing import HOSTILE_BEHAVIOURS, HostileServer

MiB = 1024 * 1024
TUSPY = {"chunk_size": MiB, "retries": 3, "retry_delay": 5}
TUSPY_CHILD = """
import json, sys
from tusclient.client import TusClient
path, url, chunk, retries, delay = sys.argv[1:6]
try:
    TusClient(url).uploader(path, chunk_size=int(chunk), retries=int(retries),
                            retry_delay=float(delay)).upload()
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)[:200]}), flush=True)
    sys.exit(1)
print(json.dumps({"ok": True}), flush=True)
"""
GRACE_S = 5.0


@dataclass
class Row:
    behaviour: str
    client: str
    requests: int
    requests_first: int
    amplification: float
    end: str
    seconds: float
    claimed_success: bool
    bytes_ok: bool | None
    post: str
    authorization: bool
    """Whether any request carried an Authorization header (neither client is given one)."""
    parallel: int


def steadypost_command() -> list[str]:
    script = Path(sys.executable).with_name("steadypost")
    return [str(script)] if script.exists() else [sys.executable, "-m", "steadypost"]


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(STEADYPOST_HOME=str(home), NO_COLOR="1", PYTHONUNBUFFERED="1")
    env.pop("STEADYPOST_ENDPOINT", None)
    env.pop("STEADYPOST_TOKEN", None)
    return env


def run_window(
    argv: Sequence[str], env: dict[str, str], seconds: float, logs: Path
) -> tuple[int | None, str, float, float, str]:
    """Run ``argv`` for at most ``seconds``: (exit code or None if it outlived the window,
    then how it ended after SIGINT, its start on the monotonic clock, its duration, its
    stdout)."""
    out_path, err_path = logs.with_suffix(".out"), logs.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            code: int | None = proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            code = None
        elapsed = time.monotonic() - start
        after = ""
        if code is None:
            proc.send_signal(signal.SIGINT)
            try:
                after = str(proc.wait(timeout=GRACE_S))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                after = "killed"
    return code, after, start, elapsed, out_path.read_text(errors="replace")


def post_states(home: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [*steadypost_command(), "list", "--json"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    states = []
    for line in done.stdout.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            states.append(str(json.loads(line).get("state")))
    return ",".join(states) or ("none" if done.returncode == 0 else f"list exit {done.returncode}")


def run_one(behaviour: str, client: str, file: Path, sha: str, args: argparse.Namespace,
            work: Path) -> Row:  # fmt: skip
    home = work / f"home-{behaviour}-{client}"
    env = child_env(home)
    with HostileServer(behaviour) as server:
        if client == "steadypost":
            argv = [*steadypost_command(), "upload", str(file), "--endpoint", server.endpoint]
        else:
            settings = [str(TUSPY[k]) for k in ("chunk_size", "retries", "retry_delay")]
            argv = [sys.executable, "-c", TUSPY_CHILD, str(file), server.endpoint, *settings]
        logs = work / f"{behaviour}-{client}"
        code, after, start, elapsed, out = run_window(argv, env, args.seconds, logs)
        requests = server.count(until=start + args.seconds)
        authorization = bool(server.authorizations)
        first = server.count(until=start + args.first)
        amplification = server.body_bytes / file.stat().st_size
        if client == "steadypost":
            claimed = code == 0
            end = f"running, SIGINT: {after}" if code is None else f"exit {code}"
        else:
            result = _last_json(out)
            claimed = code == 0 and bool(result.get("ok"))
            failure = str(result.get("error", f"exit {code}"))
            end = f"running, SIGINT: {after}" if code is None else ("ok" if claimed else failure)
        bytes_ok = None
        if claimed:
            try:
                bytes_ok = hashlib.sha256(server.stored()).hexdigest() == sha
            except LookupError:
                bytes_ok = False
    post = post_states(home, env) if client == "steadypost" else "n/a"
    return Row(behaviour, client, requests, first, round(amplification, 2), end, round(elapsed, 1),
               claimed, bytes_ok, post, authorization, args.jobs)  # fmt: skip


def _last_json(out: str) -> dict[str, object]:
    for line in reversed(out.strip().splitlines()):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return {}


def make_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def amp_cell(amplification: float) -> str:
    return f"{amplification:.0f}x" if amplification >= 10 else f"{amplification:.2f}x"


def bytes_cell(row: Row) -> str:
    return "-" if row.bytes_ok is None else ("yes" if row.bytes_ok else "NO")


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    by = {(r.behaviour, r.client): r for r in rows}
    names = [n for n in args.names if (n, "steadypost") in by or (n, "tuspy") in by]
    print(
        f"hostile servers, {args.size // MiB} MiB file, {args.seconds:g} s window per run"
        f"{', ' + str(args.jobs) + ' runs at once (figures distorted)' if args.jobs > 1 else ''}"
    )
    print("steadypost: `steadypost upload FILE --endpoint URL` (defaults); tuspy: chunk_size="
          f"{TUSPY['chunk_size'] // MiB} MiB, retries={TUSPY['retries']}, "
          f"retry_delay={TUSPY['retry_delay']} s")  # fmt: skip
    first = f"{args.first:g}s"
    head = ("behaviour", "steadypost req", first, "amp", "end", "post", "bytes", "auth",
            "tuspy req", first, "amp", "end", "bytes", "auth")  # fmt: skip
    table = [head]
    for name in names:
        sp, tp = by.get((name, "steadypost")), by.get((name, "tuspy"))
        cells = [name]
        for row, with_post in ((sp, True), (tp, False)):
            if row is None:
                cells += ["", "", "", "", *([""] if with_post else []), "", ""]
                continue
            cells += [str(row.requests), str(row.requests_first), amp_cell(row.amplification),
                      f"{row.end} ({row.seconds:g} s)"]  # fmt: skip
            if with_post:
                cells.append(row.post)
            cells += [bytes_cell(row), "SENT" if row.authorization else "-"]
        table.append(tuple(cells))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    left = (0, 4, 5, 11)  # text columns; numbers are right-aligned
    for i, r in enumerate(table):
        pairs = enumerate(zip(r, widths, strict=True))
        cells = (c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in pairs)
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    if not number.isdigit() or int(number) * factor <= 0:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (examples: 4M, 512K)")
    return int(number) * factor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="window per run (60)")
    parser.add_argument("--first", type=float, default=10.0, help="early window (10 s)")
    parser.add_argument("--size", type=parse_size, default=4 * MiB, help="file size (4M)")
    parser.add_argument("--only", default="", help="behaviours to run, comma-separated")
    parser.add_argument("--clients", default="steadypost,tuspy", help="steadypost,tuspy")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (1; more distorts)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--list", action="store_true", help="list the behaviours and exit")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, homes)")
    args = parser.parse_args(argv)
    # A shell starts background jobs with SIGINT ignored, and children inherit that: handle it
    # here, so that the clients start with the default (exec resets handled signals only).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.list:
        for b in HOSTILE_BEHAVIOURS.values():
            print(f"{b.name:22} {b.description}")
        return 0
    args.names = [n for n in (args.only.split(",") if args.only else HOSTILE_BEHAVIOURS) if n]
    unknown = [n for n in args.names if n not in HOSTILE_BEHAVIOURS]
    clients = [c for c in args.clients.split(",") if c]
    if unknown or not set(clients) <= {"steadypost", "tuspy"} or args.jobs < 1:
        parser.error(f"unknown behaviour(s) {unknown} or client(s) {clients}, or --jobs < 1")
    work = Path(tempfile.mkdtemp(prefix="steadypost-hostile-"))
    try:
        file = work / "clip.mp4"
        sha = make_file(file, args.size)
        runs = [(n, c) for n in args.names for c in clients]

        def one(run: tuple[str, str]) -> Row:
            row = run_one(*run, file, sha, args, work)
            print(f"{row.behaviour:22} {row.client:10} {row.requests:6} requests, "
                  f"{amp_cell(row.amplification)}, {row.end} ({row.seconds:g} s), {row.post}, "
                  f"bytes {bytes_cell(row)}, auth {'SENT' if row.authorization else '-'}",
                  file=sys.stderr, flush=True)  # fmt: skip
            return row

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(one, runs))
    finally:
        if args.keep:
            print(f"work dir kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print_table(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
