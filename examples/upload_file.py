"""Upload one file to a tus endpoint, with a progress line and polite retries.

    python examples/upload_file.py clip.mp4 https://uploads.example.com/files/

Set STEADYPOST_TOKEN to send ``Authorization: Bearer <token>`` (to the
endpoint's origin only). An interrupted run can be resumed with
``--resume UPLOAD_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from steadypost import Progress, ProgressKind, SteadypostError, Uploader


def show(p: Progress) -> None:
    if p.kind is ProgressKind.WAIT:
        print(f"\n{p.message}", file=sys.stderr)
    elif p.total:
        print(
            f"\r{p.sent / p.total:6.1%} sent, {p.acknowledged:,} bytes on the server",
            end="",
            file=sys.stderr,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("endpoint")
    parser.add_argument("--resume", metavar="UPLOAD_URL")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    token = os.environ.get("STEADYPOST_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with Uploader(headers=headers) as up:
        try:
            result = up.upload(args.file, args.endpoint, upload_url=args.resume, on_progress=show)
        except SteadypostError as exc:
            print(f"\nnot finished ({exc.outcome.value}): {exc}", file=sys.stderr)
            return 1
    print(f"\n{result.upload_url} sha256={result.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
