"""Upload several files at once with the asyncio API.

python examples/async_upload.py https://uploads.example.com/files/ a.mp4 b.mp4
"""

from __future__ import annotations

import asyncio
import sys

from steadypost import AsyncUploader, SteadypostError


async def main(endpoint: str, paths: list[str]) -> int:
    async with AsyncUploader() as up:
        results = await asyncio.gather(
            *(up.upload(path, endpoint) for path in paths), return_exceptions=True
        )
    failed = 0
    for path, result in zip(paths, results, strict=True):
        if isinstance(result, SteadypostError):
            failed += 1
            print(f"{path}: {result.outcome.value}: {result}", file=sys.stderr)
        elif isinstance(result, BaseException):
            raise result
        else:
            print(f"{path}: {result.upload_url}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1], sys.argv[2:])))
