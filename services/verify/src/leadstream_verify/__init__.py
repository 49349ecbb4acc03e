"""The LeadStream verify service."""
