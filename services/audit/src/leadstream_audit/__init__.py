"""The LeadStream audit service."""
