"""The ``leadstream`` command line."""

from leadstream.cli.main import app, main

__all__ = ["app", "main"]
