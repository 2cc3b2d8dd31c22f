"""kill -9 trials: is a post lost, duplicated or corrupted, and how many bytes are re-sent?

Each trial posts one random file with ``tests/crash_child.py`` (a real steadypost run in its
own process, with its own SQLite journal) to the reference tus server (``@tus/server`` +
``@tus/file-store``, started here on 127.0.0.1 from ``tests/``; run ``npm ci --prefix
tests`` once) and SIGKILLs it at a random moment: mostly when a random fraction of the file
has been handed to the socket (uniform over the bytes, plus up to 2 ms), sometimes at a
random instant from start-up on (imports, journal creation, discovery, creation). In
``--resume-kill-rate`` of the trials the first resuming run is SIGKILLed too. Then this
process resumes (``Uploader.resume_pending()`` on a clock moved past the lease) until
nothing is pending, and checks:

``lost``        the file's post is missing, not ``confirmed``, or has no completed upload
``duplicated``  more than one post for the file, or more than one completed upload for it
``corrupt``     the stored bytes' SHA-256 differs from the file's, or ``Journal.check()`` fails

Every client connection goes through a counting TCP proxy in this process (threads, on
127.0.0.1), which parses the HTTP/1.1 requests: ``bytes_sent_ratio`` is the POST and PATCH
*body* bytes the clients put on the wire (every run of the trial, killed ones included)
divided by the file size, over all trials; ``wire_ratio`` counts every client->server byte
(request lines and headers too).

    python benchmarks/crash.py --trials 100
    python benchmarks/crash.py --trials 1000 --size 8M --json
    python benchmarks/crash.py --trials 200 --chunk default,256K   # one row per chunk size

``--size`` and ``--chunk`` take binary units (8M = 8 MiB); chunk ``default`` is steadypost's
default chunk size.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO / "tests"
CHILD = TESTS_DIR / "crash_child.py"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import human_size, log, parse_size  # noqa: E402

if TYPE_CHECKING:
    from tusd import TusServer

LEASE_S = 2.0
STEP_S = 60.0
"""Each later run's clock is this far ahead of the one before (far more than the lease)."""
CHILD_TIMEOUT_S = 120.0


# ------------------------------------------------------------------------ counting proxy


class Counts:
    """Client->server bytes seen by the proxy (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.wire = 0
        self.body: dict[str, int] = {}
        self.requests: dict[str, int] = {}

    def add_wire(self, n: int) -> None:
        with self._lock:
            self.wire += n

    def add_body(self, method: str, n: int) -> None:
        with self._lock:
            self.body[method] = self.body.get(method, 0) + n

    def add_request(self, method: str) -> None:
        with self._lock:
            self.requests[method] = self.requests.get(method, 0) + 1

    def take(self) -> tuple[int, dict[str, int], dict[str, int]]:
        """The counts so far, and start again from zero."""
        with self._lock:
            out = (self.wire, dict(self.body), dict(self.requests))
            self.wire, self.body, self.requests = 0, {}, {}
            return out


class RequestMeter:
    """Follows HTTP/1.1 requests (Content-Length framing) in one client->server stream."""

    MAX_HEAD = 64 * 1024

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.head = bytearray()
        self.method = ""
        self.body_left = 0

    def feed(self, data: bytes) -> None:
        self.counts.add_wire(len(data))
        view = memoryview(data)
        while view:
            if self.body_left:
                n = min(self.body_left, len(view))
                self.counts.add_body(self.method, n)
                self.body_left -= n
                view = view[n:]
                continue
            self.head += view
            view = memoryview(b"")
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > self.MAX_HEAD:
                    raise ValueError("request head too long")
                return
            head, rest = bytes(self.head[:end]), bytes(self.head[end + 4 :])
            self.head = bytearray()
            lines = head.decode("latin-1").split("\r\n")
            self.method = lines[0].split(" ", 1)[0]
            self.counts.add_request(self.method)
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    self.body_left = int(value.strip())
                if name.strip().lower() == "transfer-encoding":
                    raise ValueError("chunked request bodies are not counted")
            view = memoryview(rest)


class CountingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream``; counts what clients send."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.counts = Counts()
        self.errors: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError as exc:
                self.errors.append(f"connect upstream: {exc}")
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            meter = RequestMeter(self.counts)
            threading.Thread(
                target=self._pump, args=(client, server, meter), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, meter: RequestMeter | None) -> None:
        try:
            while True:
                data = src.recv(256 * 1024)
                if not data:
                    break
                if meter is not None:
                    meter.feed(data)
                dst.sendall(data)
        except ValueError as exc:
            self.errors.append(str(exc))
        except OSError:
            pass  # a killed client resets its connection: the other direction ends too
        finally:
            # Pass the end on (a killed client's reset included), then let go of ``src``.
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                src.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


# --------------------------------------------------------------------------------- trials


@dataclass
class TrialResult:
    lost: bool = False
    duplicated: bool = False
    corrupt: bool = False
    kills: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    body_bytes: int = 0
    wire_bytes: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def run_child(
    args: list[str], *, kill_when_sent: int | None, kill_at_s: float | None, delay_s: float,
    stderr_path: Path,
) -> tuple[list[str], bool]:  # fmt: skip
    """Run crash_child.py; SIGKILL it once it reports ``sent >= kill_when_sent`` (then after
    ``delay_s``) or ``kill_at_s`` seconds after start. Returns (markers, killed)."""
    with stderr_path.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, stderr=err, text=True
        )
    killed = threading.Event()
    lock = threading.Lock()

    def kill() -> None:
        with lock:
            if proc.returncode is None and not killed.is_set():
                killed.set()
                proc.send_signal(signal.SIGKILL)

    timers = [threading.Timer(CHILD_TIMEOUT_S, kill)]
    if kill_at_s is not None:
        timers.append(threading.Timer(kill_at_s, kill))
    for t in timers:
        t.start()
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if kill_when_sent is not None and not killed.is_set() and line.startswith("P "):
                sent = int(line.split()[3])
                if sent >= kill_when_sent:
                    if delay_s:
                        time.sleep(delay_s)
                    kill()
        with lock:
            proc.wait()
    finally:
        for t in timers:
            t.cancel()
        proc.stdout.close()
    was_killed = killed.is_set() and proc.returncode == -signal.SIGKILL
    if not was_killed and proc.returncode != 0:
        raise RuntimeError(
            f"crash_child failed ({proc.returncode}): {lines[-3:]}\n"
            f"{stderr_path.read_text(errors='replace')[-2000:]}"
        )
    return lines, was_killed


def one_trial(
    n: int, rng: random.Random, file: Path, sha: str, size: int, chunk: int, endpoint: str,
    server: TusServer, proxy: CountingProxy, workdir: Path, resume_kill_rate: float,
) -> TrialResult:  # fmt: skip
    from steadypost import (
        DEFAULT_CHUNK_SIZE,
        Journal,
        PostOptions,
        PostState,
        RetryPolicy,
        Uploader,
    )

    result = TrialResult()
    journal_path = workdir / f"journal-{n}.sqlite3"
    stderr_path = workdir / "children.log"
    common = ["--lease", str(LEASE_S), "--chunk", str(chunk), "--block", "0"]
    proxy.counts.take()

    # 1. The posting run, killed at a random moment.
    if rng.random() < 0.1:
        kill = {"kill_when_sent": None, "kill_at_s": rng.uniform(0.0, 0.5), "delay_s": 0.0}
    else:
        kill = {
            "kill_when_sent": rng.randrange(size),
            "kill_at_s": None,
            "delay_s": rng.choice([0.0, rng.uniform(0.0, 0.002)]),
        }
    lines, killed = run_child(
        [*common, str(journal_path), endpoint, "post", str(file)], stderr_path=stderr_path, **kill
    )  # type: ignore[arg-type]
    result.kills += killed
    added = {line.split(" ", 2)[1] for line in lines if line.startswith("ADDED ")}

    # 2. Resume: maybe kill the first resuming run too, then finish here.
    generation = 1
    offset = {"s": generation * STEP_S}

    def clock() -> float:
        return time.time() + offset["s"]

    journal = Journal(journal_path, clock=clock)
    try:
        posts = journal.list()
        if added - {p.post_id for p in posts}:
            result.lost = True
            result.problems.append("a journaled post vanished")
        if not posts:  # killed before the post was journaled: the user posts it again
            with Uploader(journal=journal, clock=clock) as up:
                up.add(file, endpoint)
        if rng.random() < resume_kill_rate:
            generation += 1
            left = sum(p.identity.size - p.offset for p in journal.list() if not p.state.finished)
            _, killed = run_child(
                [*common, "--clock-offset", str(generation * STEP_S), str(journal_path),
                 endpoint, "resume"],
                kill_when_sent=rng.randint(size - left, size), kill_at_s=None,
                delay_s=0.0, stderr_path=stderr_path,
            )  # fmt: skip
            result.kills += killed
        up = Uploader(
            journal=journal, clock=clock, chunk_size=chunk or DEFAULT_CHUNK_SIZE,
            retry=RetryPolicy(base_s=0.01, cap_s=0.2, deadline_s=120.0),
            post_options=PostOptions(lease_s=LEASE_S),
        )  # fmt: skip
        with up:
            for _ in range(5):
                generation += 1
                offset["s"] = generation * STEP_S
                up.resume_pending()
                if all(p.state.finished for p in journal.list()):
                    break
        result.wire_bytes, body, result.requests = proxy.counts.take()
        result.body_bytes = body.get("POST", 0) + body.get("PATCH", 0)

        # 3. Check.
        try:
            journal.check()
        except Exception as exc:
            result.corrupt = True
            result.problems.append(f"journal check: {exc}")
        posts = journal.list()
        if len(posts) > 1:
            result.duplicated = True
            result.problems.append(f"{len(posts)} posts for one file")
        ids = {p.post_id for p in posts}
        uploads = server.uploads()
        mine = [u for u in uploads if u.metadata.get("post_id") in ids]
        completed = [u for u in mine if u.completed]
        result.orphans = len(mine) - len(completed)
        result.orphan_bytes = sum(u.stored_bytes for u in mine if not u.completed)
        if not posts or any(p.state is not PostState.CONFIRMED for p in posts) or not completed:
            result.lost = True
            result.problems.append(f"states {[p.state.value for p in posts]}, "
                                   f"{len(completed)} completed uploads")  # fmt: skip
        if len(completed) > 1:
            result.duplicated = True
            result.problems.append(f"{len(completed)} completed uploads")
        for u in completed:
            if server.sha256(u.id) != sha:
                result.corrupt = True
                result.problems.append(f"upload {u.id}: SHA-256 differs")
        for p in posts:
            if p.identity.sha256 not in (None, sha):
                result.corrupt = True
                result.problems.append(f"post {p.post_id}: journaled SHA-256 differs")
        for u in uploads:  # free the disk for the next trial
            with contextlib.suppress(OSError):
                u.data_path.unlink()
            with contextlib.suppress(OSError):
                u.info_path.unlink()
    finally:
        journal.close()
    for path in workdir.glob(f"journal-{n}.sqlite3*"):
        path.unlink()
    return result


# --------------------------------------------------------------------------------- driver


def make_random_file(path: Path, size: int, rng: random.Random) -> str:
    data = rng.randbytes(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def parse_chunk(text: str) -> int:
    return 0 if text.strip().lower() == "default" else parse_size(text)


def summarize(chunk: int, size: int, results: list[TrialResult], seconds: float) -> dict[str, Any]:
    from steadypost import DEFAULT_CHUNK_SIZE

    trials = len(results)
    ratios = sorted(r.body_bytes / size for r in results)
    return {
        "trials": trials,
        "lost": sum(r.lost for r in results),
        "duplicated": sum(r.duplicated for r in results),
        "corrupt": sum(r.corrupt for r in results),
        "bytes_sent_ratio": round(sum(r.body_bytes for r in results) / (trials * size), 4),
        "wire_ratio": round(sum(r.wire_bytes for r in results) / (trials * size), 4),
        "max_trial_ratio": round(ratios[-1], 4),
        "p99_trial_ratio": round(ratios[min(trials - 1, int(trials * 0.99))], 4),
        "kills": sum(r.kills for r in results),
        "orphan_uploads": sum(r.orphans for r in results),
        "orphan_bytes_ratio": round(sum(r.orphan_bytes for r in results) / (trials * size), 4),
        "size_bytes": size,
        "chunk_bytes": chunk or DEFAULT_CHUNK_SIZE,
        "seconds": round(seconds, 1),
        "counted": "POST+PATCH body bytes (bytes_sent_ratio); all client->server bytes "
        "(wire_ratio)",
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    size = rows[0]["size_bytes"]
    print(f"kill -9 trials, one {human_size(size)} file each, @tus/server on 127.0.0.1")
    print("bytes_sent_ratio: POST+PATCH body bytes on the wire / file size (all runs of a")
    print("trial, killed ones included); wire_ratio: every client->server byte / file size;")
    print("orphan bytes: bytes the server stored in uploads whose creation answer died with a")
    print("killed run (begun again from byte 0), / file size")
    header = ("chunk", "trials", "kills", "lost", "duplicated", "corrupt",
              "bytes_sent_ratio", "wire_ratio", "p99 trial", "max trial", "orphans",
              "orphan bytes", "seconds")  # fmt: skip
    table = [header] + [
        (human_size(r["chunk_bytes"]), str(r["trials"]), str(r["kills"]), str(r["lost"]),
         str(r["duplicated"]), str(r["corrupt"]), f"{r['bytes_sent_ratio']:.4f}",
         f"{r['wire_ratio']:.4f}", f"{r['p99_trial_ratio']:.3f}",
         f"{r['max_trial_ratio']:.3f}", str(r["orphan_uploads"]),
         f"{r['orphan_bytes_ratio']:.4f}", f"{r['seconds']:.0f}")
        for r in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def bench(args: argparse.Namespace) -> int:
    from tusd import TusServer

    chunks = [parse_chunk(c) for c in args.chunk.split(",") if c.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="steadypost-crash-", dir=args.tmp_dir))
    server: TusServer | None = None
    proxy: CountingProxy | None = None
    os.environ["STEADYPOST_HOME"] = str(workdir / "home")  # never the user's own journal
    try:
        rng = random.Random(args.seed)
        file = workdir / "video.mp4"
        sha = make_random_file(file, args.size, rng)
        server = TusServer(workdir / "uploads", log_requests=False).start()
        proxy = CountingProxy(("127.0.0.1", server.port))
        endpoint = f"http://127.0.0.1:{proxy.port}/files/"
        log(f"server {server.endpoint}, clients go through the proxy at {endpoint}")
        rows = []
        for chunk in chunks:
            results: list[TrialResult] = []
            started = time.perf_counter()
            for n in range(args.trials):
                r = one_trial(n, rng, file, sha, args.size, chunk, endpoint, server, proxy,
                              workdir, args.resume_kill_rate)  # fmt: skip
                results.append(r)
                if r.problems:
                    log(f"trial {n}: {'; '.join(r.problems)}")
                if (n + 1) % args.progress_every == 0 or n + 1 == args.trials:
                    done = summarize(chunk, args.size, results, time.perf_counter() - started)
                    log(f"chunk {human_size(chunk) if chunk else 'default'}: {n + 1} trials, "
                        f"lost {done['lost']} dup {done['duplicated']} "
                        f"corrupt {done['corrupt']} ratio {done['bytes_sent_ratio']:.4f} "
                        f"({done['seconds']:.0f} s)")  # fmt: skip
            rows.append(summarize(chunk, args.size, results, time.perf_counter() - started))
        if proxy.errors:
            log(f"proxy errors: {proxy.errors[:5]}")
        if args.json:
            out = {k: rows[0][k] for k in ("trials", "lost", "duplicated", "corrupt",
                                           "bytes_sent_ratio")}  # fmt: skip
            out["rows"] = rows
            print(json.dumps(out, indent=2))
        else:
            print_table(rows)
        bad = any(r["lost"] or r["duplicated"] or r["corrupt"] for r in rows)
        return 1 if bad else 0
    finally:
        if proxy is not None:
            proxy.close()
        if server is not None:
            server.kill()  # a SIGKILLed client's request never settles: no 5 s grace wait
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--size", type=parse_size, default=parse_size("8M"))
    parser.add_argument(
        "--chunk", default="default",
        help="chunk size(s), comma-separated: 'default' or e.g. 256K (one row each)",
    )  # fmt: skip
    parser.add_argument(
        "--resume-kill-rate", type=float, default=0.25,
        help="share of trials whose first resuming run is killed too (default 0.25)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--progress-every", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--tmp-dir", default=None, help="where to put the file and the store")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    sys.path.insert(0, str(TESTS_DIR))
    from tusd import TusServerError

    try:
        return bench(args)
    except (RuntimeError, TusServerError) as exc:
        print(f"benchmark FAILED: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
