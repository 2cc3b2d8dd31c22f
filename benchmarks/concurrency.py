"""Many uploads at once: aggregate MB/s, peak RSS and CPU per GiB, against parallel curls.

N files of ``--size`` (default 64 MiB) each, all started together, to the reference tus
server on 127.0.0.1 (the one ``throughput.py`` uses; HTTP and HTTPS, see there):

* ``curl``: N curl uploads in parallel (each a POST, then one streamed PATCH with ``-T``);
  RSS is the *sum* of the N processes' peaks (what N curls hold at once, at most), CPU
  their total less each process's empty run;
* ``async``: one Python process, ``AsyncUploader`` and ``asyncio.gather`` of N uploads;
  time and CPU measured inside it around the gather (start-up excluded), RSS its VmHWM;
* ``daemon``: ``steadypost add`` the N files, then ``steadypost daemon --once -j N``; the
  time is from the first request to the last post confirmed (from the journal's events),
  CPU the daemon process's less that of an empty ``daemon --once`` run, RSS its VmHWM.

    python benchmarks/concurrency.py                    # 4 and 8 files, 3 runs, http+https
    python benchmarks/concurrency.py --counts 8 --runs 5 --schemes https

Every stored upload is checked against its file's SHA-256. Figures are medians over the
runs (interleaved and rotated like ``throughput.py``); MB = 10**6 bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as tp  # the sibling benchmark: servers, children, curl

MODES = ("curl", "async", "daemon")


@dataclass
class Batch:
    mode: str
    count: int
    seconds: float
    peak_rss_mib: float
    cpu_s: float
    server_cpu_s: float
    upload_urls: list[str]


def run_curls(files: list[Path], size: int, site: tp.Site, timeout: float, idle: float) -> Batch:
    runs: list[tp.Run | BaseException] = [RuntimeError("not run")] * len(files)

    def one(i: int) -> None:
        try:
            runs[i] = tp.run_curl(files[i], size, site.server.endpoint, site.env, timeout,
                                  cacert=site.cacert, idle_cpu=idle)  # fmt: skip
        except BaseException as exc:
            runs[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(files))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    done = []
    for run in runs:
        if isinstance(run, BaseException):
            raise tp.BenchmarkError(f"curl: {run}")
        done.append(run)
    return Batch("curl", len(files), seconds, sum(r.peak_rss_mib for r in done),
                 sum(r.cpu_s for r in done), 0.0, [r.upload_url for r in done])  # fmt: skip


def run_async(files: list[Path], site: tp.Site, timeout: float) -> Batch:
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker",
            "--endpoint", site.server.endpoint, *map(str, files)]  # fmt: skip
    out, rss, _ = tp.Child(argv, env=site.env, timeout=timeout).wait()
    result = json.loads(out.strip().splitlines()[-1])
    rss = max(rss, (result.get("hwm_kib") or 0) / 1024)
    return Batch("async", len(files), result["seconds"], rss, result["cpu_s"], 0.0,
                 result["upload_urls"])  # fmt: skip


def async_worker(endpoint: str, files: list[Path]) -> None:
    import asyncio
    import importlib

    importlib.import_module("httpcore")  # imports are not timed (see throughput.py)
    from steadypost import AsyncUploader

    async def upload_all() -> list[str]:
        async with AsyncUploader() as up:
            done = await asyncio.gather(*(up.upload(f, endpoint) for f in files))
        return [str(d.upload_url) for d in done]

    started, cpu0 = time.perf_counter(), tp.cpu_now()
    urls = asyncio.run(upload_all())
    seconds, cpu = time.perf_counter() - started, tp.cpu_now() - cpu0
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "hwm_kib": tp.vm_hwm_kib(),
                      "upload_urls": urls}), flush=True)  # fmt: skip


def run_daemon(
    files: list[Path], site: tp.Site, workdir: Path, timeout: float, idle: float
) -> Batch:
    from steadypost import Journal, PostState

    home = Path(tempfile.mkdtemp(prefix="daemon-", dir=workdir))
    env = {**site.env, "STEADYPOST_HOME": str(home), "STEADYPOST_CONFIG_DIR": str(home / "c")}
    add = [*_cli(), "add", "--json", "--endpoint", site.server.endpoint, *map(str, files)]
    tp.Child(add, env=env, timeout=timeout, quiet=True).wait()
    daemon = [*_cli(), "daemon", "--once", "-j", str(len(files)),
              "--endpoint", site.server.endpoint]  # fmt: skip
    _, rss, cpu = tp.Child(daemon, env=env, timeout=timeout, quiet=True).wait()
    with Journal(home / "journal.sqlite3") as journal:
        posts = journal.list()
        if len(posts) != len(files) or any(p.state is not PostState.CONFIRMED for p in posts):
            states = [(p.path, p.state.value, p.last_error) for p in posts]
            raise tp.BenchmarkError(f"daemon -j {len(files)}: not every post confirmed: {states}")
        first = min(
            e.at_ts for p in posts for e in journal.events(p.post_id) if e.kind == "request"
        )
        last = max(p.updated_ts for p in posts)
        urls = [p.upload_url or "" for p in posts]
    shutil.rmtree(home, ignore_errors=True)
    return Batch("daemon", len(files), last - first, rss, max(cpu - idle, 0.0), 0.0, urls)


def _cli() -> list[str]:
    return [sys.executable, "-c", "import sys; from steadypost.cli.main import main; "
            "sys.exit(main())"]  # fmt: skip


def daemon_idle_cpu(site: tp.Site, workdir: Path, runs: int = 3) -> float:
    """CPU seconds of ``steadypost daemon --once`` with nothing to do (its start-up)."""
    cpus = []
    for _ in range(runs):
        home = Path(tempfile.mkdtemp(prefix="idle-", dir=workdir))
        env = {**site.env, "STEADYPOST_HOME": str(home), "STEADYPOST_CONFIG_DIR": str(home / "c")}
        argv = [*_cli(), "daemon", "--once", "--endpoint", site.server.endpoint]
        cpus.append(tp.Child(argv, env=env, timeout=60, quiet=True).wait()[2])
        shutil.rmtree(home, ignore_errors=True)
    return statistics.median(cpus)


def verify(site: tp.Site, batch: Batch, size: int, shas: list[str]) -> None:
    """The uploads hold the files' bytes, each file exactly once; then free the disk."""
    stored = [site.server.upload(url) for url in batch.upload_urls]
    if any(u.stored_bytes != size or u.length != size for u in stored):
        raise tp.BenchmarkError(f"{batch.mode}: an upload is not {size} bytes: {stored}")
    if sorted(site.server.sha256(u.id) for u in stored) != sorted(shas):
        raise tp.BenchmarkError(f"{batch.mode} x{batch.count}: stored bytes differ from the files")
    left = {u.id for u in site.server.uploads()} - {u.id for u in stored}
    if left:
        raise tp.BenchmarkError(f"{batch.mode}: extra uploads on the server: {sorted(left)}")
    for u in stored:
        u.data_path.unlink()
        u.info_path.unlink()


def row(mode: str, count: int, scheme: str, batches: list[Batch], size: int) -> dict[str, Any]:
    total = count * size
    rates = [total / b.seconds / 1e6 for b in batches]
    cpus = [tp.per_gib(b.cpu_s, total) for b in batches]
    return {
        "mode": mode, "count": count, "scheme": scheme, "runs": len(batches),
        "mb_per_s": round(statistics.median(rates), 1),
        "mb_per_s_min": round(min(rates), 1), "mb_per_s_max": round(max(rates), 1),
        "peak_rss_mib": round(statistics.median(b.peak_rss_mib for b in batches), 1),
        "cpu_s_per_gib": round(statistics.median(cpus), 3),
        "cpu_s_per_gib_min": round(min(cpus), 3), "cpu_s_per_gib_max": round(max(cpus), 3),
        "server_cpu_s_per_gib": round(
            statistics.median(tp.per_gib(b.server_cpu_s, total) for b in batches), 3),
    }  # fmt: skip


def print_rows(rows: list[dict[str, Any]], size: int, runs: int) -> None:
    print(f"N uploads of {tp.human_size(size)} at once to @tus/server on 127.0.0.1, "
          f"median of {runs} runs (curl RSS: the sum of its N processes)")  # fmt: skip
    curl = {(r["scheme"], r["count"]): r for r in rows if r["mode"] == "curl"}
    table = []
    for r in rows:
        ref = curl.get((r["scheme"], r["count"]))
        ratio = f"{r['mb_per_s'] / ref['mb_per_s']:.2f}x" if ref else "-"
        cpu_ratio = f"{r['cpu_s_per_gib'] / ref['cpu_s_per_gib']:.2f}x" if ref else "-"
        table.append((
            f"{r['mode']} x{r['count']}", r["scheme"], f"{r['mb_per_s']:.1f}",
            f"{r['mb_per_s_min']:.1f}-{r['mb_per_s_max']:.1f}", ratio,
            f"{r['peak_rss_mib']:.1f}", f"{r['cpu_s_per_gib']:.2f}",
            f"{r['cpu_s_per_gib_min']:.2f}-{r['cpu_s_per_gib_max']:.2f}", cpu_ratio,
            f"{r['server_cpu_s_per_gib']:.2f}",
        ))  # fmt: skip
    header = ("uploads", "scheme", "MB/s", "min-max MB/s", "x curl", "peak RSS MiB",
              "CPU s/GiB", "min-max", "x curl CPU", "server CPU s/GiB")  # fmt: skip
    print(tp.format_table(header, table))


def bench(args: argparse.Namespace) -> int:
    import psutil  # type: ignore[import-untyped]

    counts = [int(c) for c in args.counts.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    schemes = [s for s in args.schemes.split(",") if s]
    if any(m not in MODES for m in modes):
        raise SystemExit(f"--modes: from {', '.join(MODES)}")
    workdir = Path(tempfile.mkdtemp(prefix="steadypost-conc-", dir=args.tmp_dir))
    sites: list[tp.Site] = []
    try:
        files = [workdir / f"video-{i}.bin" for i in range(max(counts))]
        tp.log(f"writing {len(files)} files of {tp.human_size(args.size)}")
        shas = {str(f): tp.make_random_file(f, args.size) for f in files}
        env = tp.child_env(workdir)
        idle = tp.curl_idle_cpu(env)
        sites = tp.start_sites(workdir, schemes, env)
        daemon_idle = {s.scheme: daemon_idle_cpu(s, workdir) for s in sites} \
            if "daemon" in modes else {}  # fmt: skip
        if daemon_idle:
            tp.log(f"an idle `daemon --once` takes {daemon_idle} s of CPU (subtracted)")
        procs = {s.scheme: psutil.Process(s.pid) for s in sites}
        combos = [(s, m, n) for s in sites for n in counts for m in modes]
        results: dict[tuple[str, str, int], list[Batch]] = {
            (s.scheme, m, n): [] for s, m, n in combos
        }
        rounds = [("warm-up", i) for i in range(args.warmup)] + [
            ("run", i) for i in range(args.runs)
        ]
        for phase, i in rounds:
            shift = i % len(combos)
            for site, mode, n in combos[shift:] + combos[:shift]:
                tp.settle(args.settle)
                batch_files = files[:n]
                cpu0 = sum(procs[site.scheme].cpu_times()[:2])
                if mode == "curl":
                    batch = run_curls(batch_files, args.size, site, args.timeout, idle)
                elif mode == "async":
                    batch = run_async(batch_files, site, args.timeout)
                else:
                    batch = run_daemon(batch_files, site, workdir, args.timeout,
                                       daemon_idle[site.scheme])  # fmt: skip
                batch.server_cpu_s = sum(procs[site.scheme].cpu_times()[:2]) - cpu0
                verify(site, batch, args.size, [shas[str(f)] for f in batch_files])
                if phase == "run":
                    results[(site.scheme, mode, n)].append(batch)
                tp.log(f"{phase} {i + 1} {mode} x{n} {site.scheme}: "
                       f"{n * args.size / batch.seconds / 1e6:7.1f} MB/s  "
                       f"rss {batch.peak_rss_mib:6.1f} MiB  cpu {batch.cpu_s:5.2f} s  "
                       "sha256 ok")  # fmt: skip
        rows = [row(m, n, s.scheme, results[(s.scheme, m, n)], args.size) for s, m, n in combos]
        if args.json:
            print(json.dumps({"rows": rows, "size_bytes": args.size, "runs": args.runs},
                             indent=2))  # fmt: skip
        else:
            print_rows(rows, args.size, args.runs)
        return 0
    finally:
        for site in sites:
            site.server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=tp.parse_size, default=tp.parse_size("64M"),
                        help="size of each file (default 64M)")  # fmt: skip
    parser.add_argument("--counts", default="4,8", help="uploads at once (default 4,8)")
    parser.add_argument("--modes", default=",".join(MODES), help="curl,async,daemon")
    parser.add_argument("--schemes", default="http,https")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--tmp-dir", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        async_worker(args.endpoint, args.files)
        return 0
    sys.path.insert(0, str(tp.TESTS_DIR))
    from tusd import TusServerError

    try:
        return bench(args)
    except (tp.BenchmarkError, TusServerError) as exc:
        print(f"benchmark FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
