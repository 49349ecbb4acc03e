"""LeadStream shared library: settings, infrastructure control, clients and the CLI."""

from leadstream.errors import LeadStreamError
from leadstream.settings import Settings

__all__ = ["LeadStreamError", "Settings"]
__version__ = "0.1.0"
