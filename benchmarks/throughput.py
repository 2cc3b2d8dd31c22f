"""Upload throughput, peak memory and client CPU: curl vs tuspy vs steadypost, same tus server.

Every client uploads the same random file to the same reference tus server
(``@tus/server`` + ``@tus/file-store``, started here on 127.0.0.1 from ``tests/``; run
``npm ci --prefix tests`` once), over plain HTTP and over HTTPS: the same Node server behind
Node's own ``https``, with a certificate from a throwaway CA made by ``trustme`` (curl gets
``--cacert``, tuspy ``REQUESTS_CA_BUNDLE``, steadypost ``SSL_CERT_FILE``). Each upload runs in
its own child process, so the figures are that client's alone; peak RSS is the child's
VmHWM (see ``Child``; Linux only). Every stored upload is checked against the file's SHA-256.

    python benchmarks/throughput.py                        # 256 MiB, 3 runs, default clients
    python benchmarks/throughput.py --size 1G --runs 5
    python benchmarks/throughput.py --clients curl,tuspy-8m --size 32M --schemes https
    python benchmarks/throughput.py --tuspy-64 --json

Figures per client are medians over the runs. MB/s uses MB = 10**6 bytes and counts the
whole upload, creation POST included. For curl the time also covers starting its two
processes (POST, then one streamed PATCH with ``-T``); for the Python clients it is measured
in the child around the upload call (interpreter start-up and imports excluded; httpx defers
importing httpcore to its first client, so the steadypost worker imports it before the clock
starts, as tuspy's requests/urllib3 are). ``--size`` takes binary units: 256M = 256 MiB.

**Client CPU per GiB** is for the upload alone, start-up excluded: the Python workers
measure their own CPU (user + sys, every thread, ``getrusage``) around the upload call;
curl's is its two processes' CPU (``os.wait4``) less twice that of an empty curl run
(``curl file:///dev/null``, measured at the start). **SHA-256 s/GiB** is the part of
steadypost's CPU spent computing the file's SHA-256 (the hasher thread's own CPU time):
integrity, not protocol overhead. curl and tuspy compute no digest.

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
import resource
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


GiB = 1 << 30


@dataclass(frozen=True)
class Client:
    name: str
    kind: str  # "curl" | "tuspy" | "steadypost" | "steadypost-async" | "steadypost-journal"
    chunk_size: int | None = None  # None: the client's own default (curl: one PATCH)
    note: str = ""


CLIENTS: dict[str, Client] = {
    c.name: c
    for c in (
        Client("curl", "curl", note="1 POST + 1 streamed PATCH (-T)"),
        Client("tuspy-8m", "tuspy", 8 * MiB),
        Client("tuspy-64m", "tuspy", 64 * MiB),
        Client("steadypost", "steadypost", None, note="defaults"),
        Client("steadypost-async", "steadypost-async", None, note="AsyncUploader, defaults"),
        Client("steadypost-8m", "steadypost", 8 * MiB),
        Client("steadypost-1patch", "steadypost", 1 << 40, note="one PATCH, like curl"),
        Client("steadypost-64m", "steadypost", 64 * MiB),
        Client("steadypost-journal", "steadypost-journal", None, note="Uploader.post, journal"),
        Client("steadypost-journal-8m", "steadypost-journal", 8 * MiB),
    )
}
DEFAULT_CLIENTS = (
    "curl,tuspy-8m,steadypost,steadypost-1patch,steadypost-async,steadypost-journal,steadypost-8m"
)


@dataclass
class Run:
    client: str
    seconds: float
    peak_rss_mib: float
    cpu_s: float
    """Client CPU (user + sys) of the upload alone, start-up excluded."""
    server_cpu_s: float
    upload_url: str
    sha_cpu_s: float | None = None
    """Of ``cpu_s``, the CPU spent on the file's SHA-256 (steadypost only)."""


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

    def __init__(
        self, argv: Sequence[str], *, env: dict[str, str], timeout: float, quiet: bool = False
    ) -> None:
        self.argv = list(argv)
        # Popen returns after the child's exec, so the poller never sees the parent's memory.
        self.proc = subprocess.Popen(
            self.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,
        )  # fmt: skip
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


def curl_path() -> str:
    curl = shutil.which("curl")
    if curl is None:
        raise BenchmarkError("curl is not on PATH")
    return curl


def curl_idle_cpu(env: dict[str, str], runs: int = 5) -> float:
    """The CPU seconds of a curl process that transfers nothing (its start-up and exit)."""
    cpus = [
        Child([curl_path(), "-sS", "-o", "/dev/null", "file:///dev/null"], env=env,
              timeout=30).wait()[2]
        for _ in range(runs)
    ]  # fmt: skip
    return statistics.median(cpus)


def run_curl(
    file: Path, size: int, endpoint: str, env: dict[str, str], timeout: float,
    *, cacert: Path | None = None, idle_cpu: float = 0.0,
) -> Run:  # fmt: skip
    curl = curl_path()
    tls = ["--cacert", str(cacert)] if cacert is not None else []
    meta = "filename " + base64.b64encode(file.name.encode()).decode()
    headers = [*TUS_HEADERS, f"Upload-Length: {size}", f"Upload-Metadata: {meta}"]
    started = time.perf_counter()
    post = Child(
        [curl, *tls, "-sS", "-f", "-X", "POST", "-o", "/dev/null", "-D", "-"]
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
        [curl, *tls, "-sS", "-f", "-X", "PATCH", "-T", str(file), "-o", "/dev/null", "-D", "-"]
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
    cpu = max(cpu_post + cpu_patch - 2 * idle_cpu, 0.0)
    return Run("curl", seconds, max(rss_post, rss_patch), cpu, 0.0, url)


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
    out, rss, _ = Child(argv, env=env, timeout=timeout).wait()
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchmarkError(f"{client.name}: worker printed no result: {out!r}") from None
    rss = max(rss, (result.get("hwm_kib") or 0) / 1024)
    return Run(client.name, float(result["seconds"]), rss, float(result["cpu_s"]), 0.0,
               str(result["upload_url"]), result.get("sha_cpu_s"))  # fmt: skip


def cpu_now() -> float:
    """This process's CPU seconds so far (user + sys, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ShaMeter:
    """Adds up the CPU time of steadypost's SHA-256 hasher threads (in a worker only)."""

    def __init__(self) -> None:
        from steadypost.drivers import files

        self.cpu_s = 0.0
        self._lock = threading.Lock()
        hash_file = files.FileHasher._hash
        meter = self

        def measured(hasher: Any, reader: Any) -> str:
            started = time.thread_time()
            try:
                return hash_file(hasher, reader)
            finally:
                with meter._lock:
                    meter.cpu_s += time.thread_time() - started

        files.FileHasher._hash = measured  # type: ignore[method-assign]


def run_worker(name: str, file: Path, endpoint: str) -> None:
    """Child side: upload once with one client, print {"seconds", "upload_url"} as JSON."""
    client = CLIENTS[name]
    sha: ShaMeter | None = None
    if client.kind.startswith("steadypost"):
        importlib.import_module("httpcore")  # an import, like tuspy's: not timed (docstring)
        sha = ShaMeter()
    cpu0 = cpu_now()
    if client.kind == "tuspy":
        from tusclient import client as tus_client

        chunk = client.chunk_size or 8 * MiB
        started = time.perf_counter()
        cpu0 = cpu_now()
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
        started, cpu0 = time.perf_counter(), cpu_now()
        with Uploader() as up:
            result = up.upload(file, endpoint, **kwargs)
        seconds = time.perf_counter() - started
        url = str(result.upload_url)
    elif client.kind == "steadypost-async":
        import asyncio

        from steadypost import AsyncUploader

        async def upload() -> str:
            async with AsyncUploader() as up:
                done = await up.upload(file, endpoint)
            return str(done.upload_url)

        started, cpu0 = time.perf_counter(), cpu_now()
        url = asyncio.run(upload())
        seconds = time.perf_counter() - started
    elif client.kind == "steadypost-journal":
        # Journal on: Uploader.post() commits the post, its upload URL, each chunk's offset
        # and every request to a fresh SQLite journal (opening and creating it is timed too).
        from steadypost import Journal, PostState, Uploader

        kwargs = {}
        if client.chunk_size is not None:
            kwargs["chunk_size"] = client.chunk_size
        with tempfile.TemporaryDirectory(prefix="steadypost-journal-") as tmp:
            started, cpu0 = time.perf_counter(), cpu_now()
            journal = Journal(Path(tmp) / "journal.sqlite3")
            with journal, Uploader(journal=journal) as up:
                post = up.post(file, endpoint, **kwargs)
            seconds = time.perf_counter() - started
        if post.state is not PostState.CONFIRMED or post.upload_url is None:
            raise SystemExit(f"post ended {post.state.value}: {post.last_error}")
        url = post.upload_url
    else:
        raise SystemExit(f"--worker: unsupported client kind {client.kind!r}")
    cpu = cpu_now() - cpu0
    hwm = vm_hwm_kib()
    sha_cpu = sha.cpu_s if sha is not None else None
    print(json.dumps({"seconds": seconds, "upload_url": url, "hwm_kib": hwm, "cpu_s": cpu,
                      "sha_cpu_s": sha_cpu}), flush=True)  # fmt: skip


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


def per_gib(seconds: float, size: int) -> float:
    return seconds * GiB / size


def median_row(
    client: Client, scheme: str, runs: list[Run], size: int, curl: list[Run] | None
) -> dict[str, Any]:
    rates = [size / r.seconds / 1e6 for r in runs]
    cpus = [per_gib(r.cpu_s, size) for r in runs]
    shas = [per_gib(r.sha_cpu_s, size) for r in runs if r.sha_cpu_s is not None]
    row: dict[str, Any] = {
        "client": client.name,
        "scheme": scheme,
        "mb_per_s": round(statistics.median(rates), 1),
        "mb_per_s_min": round(min(rates), 1),
        "mb_per_s_max": round(max(rates), 1),
        "peak_rss_mib": round(statistics.median(r.peak_rss_mib for r in runs), 1),
        "cpu_s_per_gib": round(statistics.median(cpus), 3),
        "cpu_s_per_gib_min": round(min(cpus), 3),
        "cpu_s_per_gib_max": round(max(cpus), 3),
        "sha256_cpu_s_per_gib": round(statistics.median(shas), 3) if shas else None,
        "server_cpu_s_per_gib": round(
            statistics.median(per_gib(r.server_cpu_s, size) for r in runs), 3
        ),
        "runs": len(runs),
        "chunk_mib": client.chunk_size // MiB if client.chunk_size and client.chunk_size < GiB
        else None,
        "note": client.note,
        "x_curl_mb_per_s": None,
        "x_curl_cpu": None,
    }
    if curl:
        curl_rate = statistics.median(size / r.seconds / 1e6 for r in curl)
        curl_cpu = statistics.median(per_gib(r.cpu_s, size) for r in curl)
        row["x_curl_mb_per_s"] = round(row["mb_per_s"] / curl_rate, 2)
        row["x_curl_cpu"] = round(row["cpu_s_per_gib"] / curl_cpu, 2) if curl_cpu else None
    return row


def format_table(header: Sequence[str], table: Sequence[Sequence[str]]) -> str:
    rows = [tuple(header), *map(tuple, table)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(rows: list[dict[str, Any]], size: int, runs: int) -> None:
    print(f"upload of {human_size(size)} to @tus/server on 127.0.0.1, median of {runs} runs; "
          "CPU per GiB for the upload alone (start-up excluded)")  # fmt: skip
    header = ("client", "scheme", "MB/s", "min-max MB/s", "x curl", "peak RSS MiB",
              "CPU s/GiB", "min-max", "x curl CPU", "SHA-256 s/GiB",
              "server CPU s/GiB")  # fmt: skip
    table = [
        (
            r["client"], r["scheme"], f"{r['mb_per_s']:.1f}",
            f"{r['mb_per_s_min']:.1f}-{r['mb_per_s_max']:.1f}", _x(r["x_curl_mb_per_s"]),
            f"{r['peak_rss_mib']:.1f}", f"{r['cpu_s_per_gib']:.2f}",
            f"{r['cpu_s_per_gib_min']:.2f}-{r['cpu_s_per_gib_max']:.2f}", _x(r["x_curl_cpu"]),
            "-" if r["sha256_cpu_s_per_gib"] is None else f"{r['sha256_cpu_s_per_gib']:.2f}",
            f"{r['server_cpu_s_per_gib']:.2f}",
        )
        for r in rows
    ]
    print(format_table(header, table))


@dataclass
class Site:
    """One server under test: its scheme, endpoint and what a client needs to trust it."""

    scheme: str
    server: TusServer
    env: dict[str, str]
    cacert: Path | None
    pid: int


def tls_files(workdir: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    tls = workdir / "tls"
    tls.mkdir(exist_ok=True)
    paths = (tls / "ca.pem", tls / "cert.pem", tls / "key.pem")
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.cert_chain_pems[0].write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    return paths


def child_env(workdir: Path) -> dict[str, str]:
    """Children keep their data dirs (steadypost's journal) in the work dir."""
    env = dict(os.environ)
    for var in ("STEADYPOST_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        env[var] = str(workdir / "home" / var.lower())
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "sdk"), env.get("PYTHONPATH", "")) if p
    )
    return env


def start_sites(workdir: Path, schemes: Sequence[str], env: dict[str, str]) -> list[Site]:
    """One reference tus server per scheme (HTTPS: Node's https with a trustme certificate)."""
    from tusd import TusServer

    sites: list[Site] = []
    try:
        for scheme in schemes:
            site_env = dict(env)
            cacert = None
            if scheme == "https":
                cacert, cert, key = tls_files(workdir)
                server = TusServer(workdir / f"uploads-{scheme}", log_requests=False,
                                   tls_cert=cert, tls_key=key).start()  # fmt: skip
                site_env["SSL_CERT_FILE"] = str(cacert)  # httpx (steadypost)
                site_env["REQUESTS_CA_BUNDLE"] = str(cacert)  # requests (tuspy)
            else:
                server = TusServer(workdir / f"uploads-{scheme}", log_requests=False).start()
            assert server.pid is not None
            sites.append(Site(scheme, server, site_env, cacert, server.pid))
            log(f"{scheme} server at {server.endpoint}")
    except BaseException:
        for site in sites:
            site.server.stop()
        raise
    return sites


def upload_once(
    client: Client, site: Site, file: Path, size: int, args: argparse.Namespace, idle: float
) -> Run:
    if client.kind == "curl":
        return run_curl(file, size, site.server.endpoint, site.env, args.timeout,
                        cacert=site.cacert, idle_cpu=idle)  # fmt: skip
    return run_python_client(client, file, site.server.endpoint, site.env, args.timeout)


def bench(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    if args.tuspy_64 and "tuspy-64m" not in names:
        names.insert(names.index("tuspy-8m") + 1 if "tuspy-8m" in names else 0, "tuspy-64m")
    unknown = [n for n in names if n not in CLIENTS]
    if unknown or not names:
        raise SystemExit(f"unknown clients {unknown}; known: {', '.join(CLIENTS)}")
    clients = [CLIENTS[n] for n in names]
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    if not schemes or any(s not in ("http", "https") for s in schemes):
        raise SystemExit(f"--schemes: http and/or https, not {args.schemes!r}")

    import psutil  # type: ignore[import-untyped]

    workdir = Path(tempfile.mkdtemp(prefix="steadypost-bench-", dir=args.tmp_dir))
    sites: list[Site] = []
    try:
        file = workdir / "video.bin"
        log(f"writing {human_size(args.size)} of random bytes to {file}")
        sha = make_random_file(file, args.size)
        env = child_env(workdir)
        idle = curl_idle_cpu(env) if any(c.kind == "curl" for c in clients) else 0.0
        log(f"an empty curl run takes {idle * 1000:.1f} ms of CPU (subtracted from curl's)")
        sites = start_sites(workdir, schemes, env)
        procs = {site.scheme: psutil.Process(site.pid) for site in sites}

        pairs = [(site, client) for site in sites for client in clients]
        results: dict[tuple[str, str], list[Run]] = {(s.scheme, c.name): [] for s, c in pairs}
        rounds = [("warm-up", i) for i in range(args.warmup)] + [
            ("run", i) for i in range(args.runs)
        ]
        for phase, i in rounds:
            total = args.warmup if phase == "warm-up" else args.runs
            # Interleaved, so drift hits every client alike, and rotated each round, so no
            # client always follows the same one (a slow predecessor's leftovers, such as the
            # server's garbage collection, would otherwise always land on the same client).
            shift = i % len(pairs)
            for site, client in pairs[shift:] + pairs[:shift]:
                settle(args.settle)
                server_proc = procs[site.scheme]
                cpu0 = sum(server_proc.cpu_times()[:2])
                run = upload_once(client, site, file, args.size, args, idle)
                run.server_cpu_s = sum(server_proc.cpu_times()[:2]) - cpu0
                verify_and_remove(site.server, run, args.size, sha)
                if phase == "run":
                    results[(site.scheme, client.name)].append(run)
                sha_part = "" if run.sha_cpu_s is None else f" (sha {run.sha_cpu_s:5.2f})"
                log(
                    f"{phase} {i + 1}/{total} {client.name:<18} {site.scheme:<5} "
                    f"{args.size / run.seconds / 1e6:8.1f} MB/s  "
                    f"rss {run.peak_rss_mib:6.1f} MiB  cpu {run.cpu_s:5.2f} s{sha_part}  "
                    "sha256 ok"
                )

        rows = []
        for site in sites:
            curl = results.get((site.scheme, "curl"))
            rows += [median_row(c, site.scheme, results[(site.scheme, c.name)], args.size, curl)
                     for c in clients]  # fmt: skip
        if args.json:
            meta = {"size_bytes": args.size, "runs": args.runs, "warmup": args.warmup,
                    "curl_idle_cpu_s": idle}  # fmt: skip
            print(json.dumps({"rows": rows, **meta}, indent=2))
        else:
            print_table(rows, args.size, args.runs)
        return 0
    finally:
        for site in sites:
            site.server.stop()
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
    parser.add_argument(
        "--schemes", default="http,https", help="http, https or both (default: http,https)"
    )
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
