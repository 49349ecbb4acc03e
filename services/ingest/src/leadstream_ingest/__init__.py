"""The LeadStream ingest service."""
