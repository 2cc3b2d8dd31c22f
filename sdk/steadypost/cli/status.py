"""``steadypost status``: is the daemon (or a fleet of workers) running, and what is next?

Kept apart from :mod:`steadypost.cli.daemon` so that ``status`` starts without
the daemon's own modules (watch folders, the scheduler, the heartbeat).
"""

from __future__ import annotations

import os
from typing import Any

import click

from steadypost.cli.app import App
from steadypost.cli.options import common_options, json_option, pass_app
from steadypost.cli.output import iso, print_json, seconds, size, when
from steadypost.daemon.status import Status, WorkerStatus, read_status


def _status_record(status: Status) -> dict[str, Any]:
    def ref(post: Any, at: float | None) -> dict[str, Any] | None:
        if post is None:
            return None
        return {"at": iso(at), "post_id": post.post_id, "file": os.path.basename(post.path)}

    d = status.daemon
    error = status.last_error
    running = bool(d) or any(w.alive for w in status.workers)
    return {
        "daemon": {"running": True, "pid": d.pid or None, "since": iso(d.started_at or None),
                   "host": d.host or None} if d else {"running": running},
        "journal": status.journal,
        "shared": status.shared,
        "workers": [_worker_record(w, status.now) for w in status.workers],
        "counts": {state.value: n for state, n in status.counts.items()},
        "uploading": [{"post_id": p.post_id, "file": os.path.basename(p.path), "offset": p.offset,
                       "bytes": p.identity.size} for p in status.uploading],
        "next_upload": ref(status.next_upload, status.next_upload_at),
        "next_verification": ref(status.next_check, status.next_check_at),
        "last_error": None if error is None else {
            "at": iso(error.at), "message": error.message, "post_id": error.post_id,
            "file": error.file},
    }  # fmt: skip


def _worker_record(view: WorkerStatus, now: float) -> dict[str, Any]:
    w = view.worker
    state = "stopped" if w.stopped_at is not None else "alive" if view.alive else "silent"
    return {
        "name": w.name, "host": w.host, "pid": w.pid, "state": state,
        "started_at": iso(w.started_at), "heartbeat_at": iso(w.heartbeat_at),
        "silent_s": round(w.silent_for(now), 1), "lease_s": w.lease_s,
        "concurrency": w.data.get("concurrency"),
        "uploading": [{"post_id": p.post_id, "file": os.path.basename(p.path), "offset": p.offset,
                       "bytes": p.identity.size} for p in view.uploading],
    }  # fmt: skip


def _worker_line(view: WorkerStatus, now: float) -> str:
    w = view.worker
    if w.stopped_at is not None:
        state = f"stopped at {when(w.stopped_at, now)}"
    elif view.alive:
        state = f"alive, heartbeat {seconds(w.silent_for(now))} ago"
    else:
        state = (f"SILENT for {seconds(w.silent_for(now))} (killed, frozen or cut off? its "
                 "posts go to other workers as their leases end)")
    busy = ", ".join(f"{os.path.basename(p.path)} {p.offset * 100 // max(p.identity.size, 1)}%"
                     for p in view.uploading)  # fmt: skip
    return f"{w.name} on {w.host} (pid {w.pid}): {state}" + (f"; uploading {busy}" if busy else "")


def _print_status(app: App, status: Status) -> None:
    now = status.now
    d = status.daemon
    alive = sum(w.alive for w in status.workers)
    if status.shared:
        hosts = len({view.worker.host for view in status.workers if view.alive})
        daemon_line = (f"{alive} worker(s) alive on {hosts} host(s)" if alive
                       else "no worker alive (`steadypost daemon --journal URL` starts one)")
    elif d is None:
        daemon_line = "not running (`steadypost daemon` starts it)"
    elif not d.pid:
        daemon_line = "starting"
    else:
        daemon_line = f"running, pid {d.pid}, since {when(d.started_at, now)}"
    counts = ", ".join(f"{n} {state.value}" for state, n in status.counts.items())
    rows = [("daemon", daemon_line), ("journal", status.journal), ("posts", counts)]
    if status.shared:
        rows += [("worker", _worker_line(view, now)) for view in status.workers]
    for busy in status.uploading:
        share = busy.offset * 100 // max(busy.identity.size, 1)
        rows.append(("uploading", f"{os.path.basename(busy.path)}: {share}% "
                     f"({size(busy.offset)} of {size(busy.identity.size)}), post {busy.post_id}"))
    for label, post, at in (("next upload", status.next_upload, status.next_upload_at),
                            ("next check", status.next_check, status.next_check_at)):
        if post is None or at is None:
            rows.append((label, "none"))
        else:
            moment = "now" if at <= now else when(at, now)
            rows.append((label, f"{moment}: {os.path.basename(post.path)} (post {post.post_id})"))
    error = status.last_error
    if error is None:
        rows.append(("last error", "none"))
    else:
        whose = f"{error.file} (post {error.post_id}): " if error.post_id else "daemon: "
        rows.append(("last error", f"{when(error.at, now)} {whose}{error.message}"))
    for label, text in rows:
        app.out.line(f"{label:>11}  {text}")


@click.command(short_help="Is the daemon running? What is queued, due, failing?")
@json_option
@common_options
@pass_app
def status(app: App, as_json: bool) -> None:
    """Show whether the daemon runs, how many posts are in each state, and what is next.

    On a journal shared by a fleet (PostgreSQL), one line per worker: its
    name and host, its last heartbeat, and what it is uploading. A worker
    not heard from within its lease is SILENT: killed, frozen or cut off
    from the database; its posts go to other workers as their leases end.

    \b
    With --json, one object:
      daemon             {running, pid, since, host} ({running: false} if none)
      journal            the journal's path, or its URL without the password
      shared             true for a journal a fleet shares (PostgreSQL)
      workers            [{name, host, pid, state (alive, silent, stopped),
                          started_at, heartbeat_at, silent_s, lease_s,
                          concurrency, uploading}]: the fleet's daemons
      counts             {queued, uploading, waiting, unconfirmed, confirmed,
                          failed, cancelled}: posts in each state
      uploading          [{post_id, file, offset, bytes}]: uploads running now
      next_upload        {at, post_id, file}, or null
      next_verification  {at, post_id, file}, or null
      last_error         {at, message, post_id, file}, or null
    Times are UTC ISO 8601 (2025-11-24T14:02:11Z).

    \b
    Examples:
      steadypost status
      steadypost status --json | jq .daemon.pid
      steadypost --journal postgresql://me@db/posts status --json | jq '.workers[].name'
    """
    info = read_status(app.journal, now=app.now())
    if as_json:
        print_json(app.out, _status_record(info))
    else:
        _print_status(app, info)


__all__ = ["status"]
