"""The LeadStream filter service."""
