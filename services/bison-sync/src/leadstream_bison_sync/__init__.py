"""The LeadStream bison-sync service."""
