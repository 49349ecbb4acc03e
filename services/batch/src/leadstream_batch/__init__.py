"""The LeadStream batch service."""
