"""The root of every exception LeadStream raises on purpose."""


class LeadStreamError(Exception):
    """Base class for LeadStream's own errors."""


class ConfigError(LeadStreamError):
    """The environment or settings are invalid."""
