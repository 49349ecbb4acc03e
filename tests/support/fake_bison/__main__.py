"""Serve the fake in its own process (benchmarks): prints one JSON line with the URL, the
workspace, its key and campaign ids, then serves until killed.

    python -m tests.support.fake_bison --rate-per-minute 300 --campaigns 2
"""

from __future__ import annotations

import argparse
import json
import sys

import uvicorn

from tests.support.fake_bison.app import create_app
from tests.support.fake_bison.fake import FakeBison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-per-minute", type=float, default=None)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--campaigns", type=int, default=1)
    args = parser.parse_args()
    fake = FakeBison(rate_per_minute=args.rate_per_minute, window_s=args.window_s)
    ws, key = fake.add_workspace("Bench agency")
    campaigns = [fake.add_campaign(ws, f"Campaign {i + 1}") for i in range(args.campaigns)]
    config = uvicorn.Config(
        create_app(fake),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws="none",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        sock = server.servers[0].sockets[0]
        port = sock.getsockname()[1]
        line = {
            "url": f"http://127.0.0.1:{port}",
            "workspace_id": ws,
            "key": key,
            "campaigns": campaigns,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    import asyncio

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        await announce()
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
