"""Upload throughput, peak memory and CPU: curl vs tuspy vs steadypost, same tus server.

Every client uploads the same random file to the same reference tus server
(``@tus/server`` + ``@tus/file-store``, started here on 127.0.0.1 from ``tests/``; run
``npm ci --prefix tests`` once). Each upload runs in its own child process, so the figures
are that client's alone: CPU (user + sys) comes from ``os.wait4`` on the child, peak RSS
from the child's VmHWM (see ``Child``; Linux only). Every stored upload is checked against
the file's SHA-256.

    python benchmarks/throughput.py                        # 256 MiB, 3 runs, default clients
    python benchmarks/throughput.py --size 1G --runs 5
    python benchmarks/throughput.py --clients curl,tuspy-8m --size 32M
    python benchmarks/throughput.py --tuspy-64 --json

Figures per client are medians over the runs. MB/s uses MB = 10**6 bytes and counts the
whole upload, creation POST included. For curl the time also covers starting its two
processes (POST, then one streamed PATCH with ``-T``); for the Python clients it is measured
in the child around the upload call (interpreter start-up and imports excluded from MB/s,
included in CPU and RSS; httpx defers importing httpcore to its first client, so the steadypost
worker imports it before the clock starts, as tuspy's requests/urllib3 are). ``--size`` takes
binary units: 256M = 256 MiB.

To add a row: add a ``Client`` to ``CLIENTS`` (and, for a new kind, a branch in
``run_worker``); then name it in ``--clients``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import importlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO / "tests"

if TYPE_CHECKING:
    from tusd import TusServer

# The parent imports psutil and tests/tusd.py lazily (in bench()), so a worker child
# loads nothing but its own client and this file's standard-library imports.

MiB = 1024 * 1024
TUS_HEADERS = ("Tus-Resumable: 1.0.0",)


@dataclass(frozen=True)
class Client:
    name: str
    kind: str  # "curl" | "tuspy" | "steadypost" | "steadypost-journal"
    chunk_size: int | None = None  # None: the client's own default (curl: one PATCH)
    note: str = ""


CLIENTS: dict[str, Client] = {
    c.name: c
    for c in (
        Client("curl", "curl", note="1 POST + 1 streamed PATCH (-T)"),
        Client("tuspy-8m", "tuspy", 8 * MiB),
        Client("tuspy-64m", "tuspy", 64 * MiB),
        Client("steadypost", "steadypost", None, note="defaults"),
        Client("steadypost-8m", "steadypost", 8 * MiB),
        Client("steadypost-64m", "steadypost", 64 * MiB),
        Client("steadypost-journal", "steadypost-journal", None, note="Uploader.post, journal"),
        Client("steadypost-journal-8m", "steadypost-journal", 8 * MiB),
    )
}
DEFAULT_CLIENTS = (
    "curl,tuspy-8m,steadypost,steadypost-journal,steadypost-8m,steadypost-journal-8m,"
    "steadypost-64m"
)


@dataclass
class Run:
    client: str
    seconds: float
    peak_rss_mib: float
    cpu_s: float
    server_cpu_s: float
    upload_url: str


class BenchmarkError(RuntimeError):
    pass


# ------------------------------------------------------------------------------ helpers


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (examples: 32M, 256M, 1G)")
    power = "KMGT".find(m.group(2).upper()) + 1 if m.group(2) else 0
    size = int(m.group(1)) << (10 * power)
    if size <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return size


def human_size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def make_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = 8 * MiB
    with path.open("wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(block, remaining))
            f.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def vm_hwm_kib(pid: int | str = "self") -> int | None:
    """Peak RSS (VmHWM) of a live process's current address space, in KiB (Linux)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmHWM:\s+(\d+)\s+kB", status, re.MULTILINE)
    return int(m.group(1)) if m else None


class Child:
    """A child process: exit status and CPU time from ``os.wait4``, peak RSS from VmHWM.

    Not ``ru_maxrss``: Linux carries the parent's peak RSS over fork and exec into the
    child's ``ru_maxrss``, so a 9 MiB child of a 300 MiB parent reports 300 MiB. VmHWM is
    the peak of the child's own (post-exec) address space; it is polled every few ms until
    the child exits, and Python workers also report their own at the end.
    """

    POLL_S = 0.005

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], timeout: float) -> None:
        self.argv = list(argv)
        # Popen returns after the child's exec, so the poller never sees the parent's memory.
        self.proc = subprocess.Popen(
            self.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        self.timed_out = False
        self.hwm_kib = 0
        self._done = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()
        self._timer = threading.Timer(timeout, self._kill)
        self._timer.daemon = True
        self._timer.start()

    def _poll(self) -> None:
        while not self._done.is_set():
            hwm = vm_hwm_kib(self.proc.pid)
            if hwm is None:  # exited (zombie: no memory left to report)
                return
            self.hwm_kib = max(self.hwm_kib, hwm)
            self._done.wait(self.POLL_S)

    def _kill(self) -> None:
        self.timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)

    def wait(self) -> tuple[str, float, float]:
        """Return (stdout, peak RSS MiB, CPU seconds); raise if the child failed."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.read().decode("utf-8", errors="replace")
        self.proc.stdout.close()
        self._poller.join()  # returns once the child is a zombie, before it is reaped
        _, status, usage = os.wait4(self.proc.pid, 0)
        self._done.set()
        self._timer.cancel()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.timed_out:
            raise BenchmarkError(f"timed out: {' '.join(self.argv)}")
        if self.proc.returncode != 0:
            raise BenchmarkError(
                f"exit code {self.proc.returncode}: {' '.join(self.argv)}\nstdout: {out}"
            )
        return out, self.hwm_kib / 1024, usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------ runners


def run_curl(file: Path, size: int, endpoint: str, env: dict[str, str], timeout: float) -> Run:
    curl = shutil.which("curl")
    if curl is None:
        raise BenchmarkError("curl is not on PATH")
    meta = "filename " + base64.b64encode(file.name.encode()).decode()
    headers = [*TUS_HEADERS, f"Upload-Length: {size}", f"Upload-Metadata: {meta}"]
    started = time.perf_counter()
    post = Child(
        [curl, "-sS", "-f", "-X", "POST", "-o", "/dev/null", "-D", "-"]
        + [arg for h in headers for arg in ("-H", h)]
        + [endpoint],
        env=env,
        timeout=timeout,
    )
    out, rss_post, cpu_post = post.wait()
    m = re.search(r"^location:\s*(\S+)", out, re.IGNORECASE | re.MULTILINE)
    if not m:
        raise BenchmarkError(f"curl: no Location in the creation response:\n{out}")
    url = m.group(1)
    patch_headers = [
        *TUS_HEADERS,
        "Upload-Offset: 0",
        "Content-Type: application/offset+octet-stream",
        "Expect:",  # no 100-continue round trip
    ]
    patch = Child(
        [curl, "-sS", "-f", "-X", "PATCH", "-T", str(file), "-o", "/dev/null", "-D", "-"]
        + [arg for h in patch_headers for arg in ("-H", h)]
        + [url],
        env=env,
        timeout=timeout,
    )
    out, rss_patch, cpu_patch = patch.wait()
    seconds = time.perf_counter() - started
    m = re.search(r"^upload-offset:\s*(\d+)", out, re.IGNORECASE | re.MULTILINE)
    if not m or int(m.group(1)) != size:
        raise BenchmarkError(f"curl: PATCH did not finish the upload:\n{out}")
    return Run("curl", seconds, max(rss_post, rss_patch), cpu_post + cpu_patch, 0.0, url)


def run_python_client(
    client: Client, file: Path, endpoint: str, env: dict[str, str], timeout: float
) -> Run:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        client.name,
        "--file",
        str(file),
        "--endpoint",
        endpoint,
    ]
    out, rss, cpu = Child(argv, env=env, timeout=timeout).wait()
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchmarkError(f"{client.name}: worker printed no result: {out!r}") from None
    rss = max(rss, (result.get("hwm_kib") or 0) / 1024)
    return Run(client.name, float(result["seconds"]), rss, cpu, 0.0, str(result["upload_url"]))


def run_worker(name: str, file: Path, endpoint: str) -> None:
    """Child side: upload once with one client, print {"seconds", "upload_url"} as JSON."""
    client = CLIENTS[name]
    if client.kind.startswith("steadypost"):
        importlib.import_module("httpcore")  # an import, like tuspy's: not timed (docstring)
    if client.kind == "tuspy":
        from tusclient import client as tus_client

        chunk = client.chunk_size or 8 * MiB
        started = time.perf_counter()
        uploader = tus_client.TusClient(endpoint).uploader(
            file_path=str(file),
            chunk_size=chunk,
            # tuspy sends an empty Upload-Metadata without metadata, which @tus/server rejects.
            metadata={"filename": file.name},
        )
        uploader.upload()
        seconds = time.perf_counter() - started
        url = str(uploader.url)
    elif client.kind == "steadypost":
        from steadypost import Uploader

        kwargs: dict[str, Any] = {}
        if client.chunk_size is not None:
            kwargs["chunk_size"] = client.chunk_size
        started = time.perf_counter()
        with Uploader() as up:
            result = up.upload(file, endpoint, **kwargs)
        seconds = time.perf_counter() - started
        url = str(result.upload_url)
    elif client.kind == "steadypost-journal":
        # Journal on: Uploader.post() commits the post, its upload URL, each chunk's offset
        # and every request to a fresh SQLite journal (opening and creating it is timed too).
        from steadypost import Journal, PostState, Uploader

        kwargs = {}
        if client.chunk_size is not None:
            kwargs["chunk_size"] = client.chunk_size
        with tempfile.TemporaryDirectory(prefix="steadypost-journal-") as tmp:
            started = time.perf_counter()
            journal = Journal(Path(tmp) / "journal.sqlite3")
            with journal, Uploader(journal=journal) as up:
                post = up.post(file, endpoint, **kwargs)
            seconds = time.perf_counter() - started
        if post.state is not PostState.CONFIRMED or post.upload_url is None:
            raise SystemExit(f"post ended {post.state.value}: {post.last_error}")
        url = post.upload_url
    else:
        raise SystemExit(f"--worker: unsupported client kind {client.kind!r}")
    hwm = vm_hwm_kib()
    print(json.dumps({"seconds": seconds, "upload_url": url, "hwm_kib": hwm}), flush=True)


# ------------------------------------------------------------------------------ driver


def settle(seconds: float) -> None:
    """Let the previous upload's disk writeback and the server's clean-up finish first."""
    os.sync()
    time.sleep(seconds)


def verify_and_remove(server: TusServer, run: Run, size: int, sha: str) -> None:
    """The stored upload must be byte-identical to the file; then free its disk space."""
    try:
        stored = server.upload(run.upload_url)
    except KeyError:
        raise BenchmarkError(f"{run.client}: server has no upload at {run.upload_url}") from None
    if stored.stored_bytes != size or stored.length != size:
        raise BenchmarkError(
            f"{run.client}: stored {stored.stored_bytes} of {stored.length} bytes, expected {size}"
        )
    got = server.sha256(run.upload_url)
    if got != sha:
        raise BenchmarkError(f"{run.client}: SHA-256 mismatch: stored {got}, file {sha}")
    others = [u.id for u in server.uploads() if u.id != stored.id]
    if others:
        raise BenchmarkError(f"{run.client}: left extra uploads on the server: {others}")
    stored.data_path.unlink()
    stored.info_path.unlink()


def median_row(client: Client, runs: list[Run], size: int) -> dict[str, Any]:
    rates = [size / r.seconds / 1e6 for r in runs]
    return {
        "client": client.name,
        "mb_per_s": round(statistics.median(rates), 1),
        "peak_rss_mib": round(statistics.median(r.peak_rss_mib for r in runs), 1),
        "cpu_s": round(statistics.median(r.cpu_s for r in runs), 2),
        "server_cpu_s": round(statistics.median(r.server_cpu_s for r in runs), 2),
        "runs": len(runs),
        "mb_per_s_min": round(min(rates), 1),
        "mb_per_s_max": round(max(rates), 1),
        "chunk_mib": client.chunk_size // MiB if client.chunk_size else None,
        "note": client.note,
    }


def print_table(rows: list[dict[str, Any]], size: int, runs: int) -> None:
    print(f"upload of {human_size(size)} to @tus/server on 127.0.0.1, median of {runs} runs")
    header = ("client", "MB/s", "min-max MB/s", "peak RSS MiB", "CPU s", "server CPU s")
    table = [header] + [
        (
            r["client"],
            f"{r['mb_per_s']:.1f}",
            f"{r['mb_per_s_min']:.1f}-{r['mb_per_s_max']:.1f}",
            f"{r['peak_rss_mib']:.1f}",
            f"{r['cpu_s']:.2f}",
            f"{r['server_cpu_s']:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)
        ]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def bench(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    if args.tuspy_64 and "tuspy-64m" not in names:
        names.insert(names.index("tuspy-8m") + 1 if "tuspy-8m" in names else 0, "tuspy-64m")
    unknown = [n for n in names if n not in CLIENTS]
    if unknown or not names:
        raise SystemExit(f"unknown clients {unknown}; known: {', '.join(CLIENTS)}")
    clients = [CLIENTS[n] for n in names]

    import psutil  # type: ignore[import-untyped]

    from tusd import TusServer

    workdir = Path(tempfile.mkdtemp(prefix="steadypost-bench-", dir=args.tmp_dir))
    server: TusServer | None = None
    try:
        file = workdir / "video.bin"
        log(f"writing {human_size(args.size)} of random bytes to {file}")
        sha = make_random_file(file, args.size)
        # Children keep their data dirs (steadypost's journal) in the work dir.
        env = dict(os.environ)
        for var in ("STEADYPOST_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
            env[var] = str(workdir / "home" / var.lower())
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "sdk"), env.get("PYTHONPATH", "")) if p
        )
        server = TusServer(workdir / "uploads", log_requests=False).start()
        server_proc = psutil.Process(server.pid)
        log(f"server at {server.endpoint}")

        results: dict[str, list[Run]] = {c.name: [] for c in clients}
        rounds = [("warm-up", i) for i in range(args.warmup)] + [
            ("run", i) for i in range(args.runs)
        ]
        for phase, i in rounds:
            total = args.warmup if phase == "warm-up" else args.runs
            # Interleaved, so drift hits every client alike, and rotated each round, so no
            # client always follows the same one (a slow predecessor's leftovers, such as the
            # server's garbage collection, would otherwise always land on the same client).
            shift = i % len(clients)
            for client in clients[shift:] + clients[:shift]:
                settle(args.settle)
                cpu0 = sum(server_proc.cpu_times()[:2])
                if client.kind == "curl":
                    run = run_curl(file, args.size, server.endpoint, env, args.timeout)
                else:
                    run = run_python_client(client, file, server.endpoint, env, args.timeout)
                run.server_cpu_s = sum(server_proc.cpu_times()[:2]) - cpu0
                verify_and_remove(server, run, args.size, sha)
                if phase == "run":
                    results[client.name].append(run)
                log(
                    f"{phase} {i + 1}/{total} {client.name:<15} "
                    f"{args.size / run.seconds / 1e6:8.1f} MB/s  "
                    f"rss {run.peak_rss_mib:7.1f} MiB  cpu {run.cpu_s:6.2f} s  sha256 ok"
                )

        rows = [median_row(c, results[c.name], args.size) for c in clients]
        if args.json:
            meta = {"size_bytes": args.size, "runs": args.runs, "warmup": args.warmup}
            print(json.dumps({"rows": rows, **meta}, indent=2))
        else:
            print_table(rows, args.size, args.runs)
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("256M"))
    parser.add_argument("--runs", type=int, default=3, help="timed runs per client")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed (but verified) rounds first (default 1)"
    )
    parser.add_argument(
        "--clients",
        default=DEFAULT_CLIENTS,
        help=f"comma-separated, from: {', '.join(CLIENTS)} (default: {DEFAULT_CLIENTS})",
    )
    parser.add_argument("--tuspy-64", action="store_true", help="add tuspy with 64 MiB chunks")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--timeout", type=float, default=600.0, help="per upload, seconds")
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds of quiet (after a sync) before each upload (default 1)",
    )
    parser.add_argument("--tmp-dir", default=None, help="where to put the file and the store")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        run_worker(args.worker, args.file, args.endpoint)
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sys.path.insert(0, str(TESTS_DIR))
    from tusd import TusServerError

    try:
        return bench(args)
    except (BenchmarkError, TusServerError) as exc:
        print(f"benchmark FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
