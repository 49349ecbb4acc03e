"""Operator tools over the running pipeline: dead-letter inspection and redrive, replay."""

from leadstream.ops.dlq import DeadLetter, DlqSummary, pending, redrive, summarize

__all__ = ["DeadLetter", "DlqSummary", "pending", "redrive", "summarize"]
