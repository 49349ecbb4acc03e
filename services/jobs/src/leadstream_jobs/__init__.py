"""The LeadStream jobs service."""
