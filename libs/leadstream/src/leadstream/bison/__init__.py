"""Email Bison: the HTTP client, the shared rate limiter, lead payloads, reply sentiment.

- :class:`BisonClient` — the documented API (``shared/reference/email-bison-api.md``) with
  429/5xx/timeout handling; typed errors in :mod:`leadstream.bison.errors`;
- :class:`RedisTokenBucket` — one atomic Lua script keeps every instance under one rate;
- :func:`lead_payload` — a BatchContact as an Email Bison lead;
- :func:`classify` — reply sentiment (rules + lexicon).
"""

from leadstream.bison.client import MAX_LEADS_PER_CALL, BisonClient, Page, RetryPolicy, api_root
from leadstream.bison.errors import (
    BisonAuthError,
    BisonError,
    BisonNotFoundError,
    BisonOutcomeUnknownError,
    BisonRateLimitedError,
    BisonRequestError,
    BisonUnavailableError,
    BisonValidationError,
)
from leadstream.bison.leads import lead_payload, variable_names
from leadstream.bison.ratelimit import RateLimiter, RedisTokenBucket, Unlimited
from leadstream.bison.sentiment import SENTIMENTS, Sentiment, classify

__all__ = [
    "MAX_LEADS_PER_CALL",
    "SENTIMENTS",
    "BisonAuthError",
    "BisonClient",
    "BisonError",
    "BisonNotFoundError",
    "BisonOutcomeUnknownError",
    "BisonRateLimitedError",
    "BisonRequestError",
    "BisonUnavailableError",
    "BisonValidationError",
    "Page",
    "RateLimiter",
    "RedisTokenBucket",
    "RetryPolicy",
    "Sentiment",
    "Unlimited",
    "api_root",
    "classify",
    "lead_payload",
    "variable_names",
]
