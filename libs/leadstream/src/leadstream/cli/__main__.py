"""``python -m leadstream.cli``."""

from leadstream.cli.main import main

main()
