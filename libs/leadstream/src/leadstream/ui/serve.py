"""Serve kaskade with textual-serve. Run by ``leadstream ui`` with kaskade's own interpreter.

Usage: ``python serve.py --host H --port P --public-url URL --title T -- <kaskade args>``.
Every browser tab that opens the page gets its own kaskade process, started by ``launch.py``;
each ends when this server is gone.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

LAUNCH = Path(__file__).with_name("launch.py")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8086)
    parser.add_argument("--public-url", default=None)
    parser.add_argument("--title", default="kaskade")
    parser.add_argument("kaskade", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kaskade = args.kaskade[1:] if args.kaskade[:1] == ["--"] else args.kaskade

    from textual_serve.server import Server

    # Each app process watches this one and ends when it is gone (launch.py).
    os.environ["LEADSTREAM_UI_SERVER_PID"] = str(os.getpid())
    command = shlex.join([sys.executable, str(LAUNCH), *kaskade])
    server = Server(
        command, host=args.host, port=args.port, title=args.title, public_url=args.public_url
    )
    server.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
