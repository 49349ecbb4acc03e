"""The external verifier: a client of a Reacher-compatible HTTP API (``POST /v1/check_email``
with ``{"to_email": ...}``, answer ``is_reachable`` = safe | risky | invalid | unknown plus
``smtp``/``misc`` details), behind :class:`~leadstream_verify.ports.EmailVerifier`.

It has its own rate limit (token bucket), a concurrency cap, a circuit breaker and a time
budget per batch. Every email gets an outcome: a conclusive verdict, or ``None`` with a reason
(``provider_unknown``, ``provider_error``, ``provider_unavailable`` when the breaker is open,
``provider_skipped`` past the budget) so the built-in verdict stands. Conclusive answers are
cached in process, so a retried or replayed batch does not pay twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx

from leadstream_verify.bridge import AsyncBridge
from leadstream_verify.resilience import CircuitBreaker, TokenBucket
from leadstream_verify.verdict import ProviderOutcome, Verdict

log = logging.getLogger(__name__)
_REACHABLE = {
    "safe": Verdict.DELIVERABLE,
    "risky": Verdict.RISKY,
    "invalid": Verdict.UNDELIVERABLE,
}
UNAVAILABLE = ProviderOutcome(None, ("provider_unavailable",))
ERROR = ProviderOutcome(None, ("provider_error",))
SKIPPED = ProviderOutcome(None, ("provider_skipped",))
_CACHE_MAX = 100_000


def outcome_of(body: Mapping[str, Any]) -> ProviderOutcome:
    """Map a Reacher ``CheckEmailOutput`` to a verdict and reason codes."""
    reachable = str(body.get("is_reachable", "unknown"))
    verdict = _REACHABLE.get(reachable)
    if verdict is None:
        return ProviderOutcome(None, ("provider_unknown",))
    smtp = _section(body, "smtp")
    misc = _section(body, "misc")
    reasons: list[str] = []
    if verdict is Verdict.DELIVERABLE:
        reasons.append("mailbox_exists")
    for flag, code in (
        ("is_catch_all", "catch_all"),
        ("has_full_inbox", "mailbox_full"),
        ("is_disabled", "mailbox_disabled"),
    ):
        if smtp.get(flag) is True:
            reasons.append(code)
    if misc.get("is_disposable") is True:
        reasons.append("disposable")
    if misc.get("is_role_account") is True:
        reasons.append("role_account")
    if verdict is Verdict.UNDELIVERABLE and "mailbox_disabled" not in reasons:
        syntax = body.get("syntax")
        if isinstance(syntax, dict) and syntax.get("is_valid_syntax") is False:
            reasons.append("invalid_syntax")
        else:
            reasons.append("mailbox_not_found")
    return ProviderOutcome(verdict, tuple(reasons))


def _section(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = body.get(name)
    return part if isinstance(part, dict) else {}


class ReacherVerifier:
    """:class:`~leadstream_verify.ports.EmailVerifier` over a Reacher-compatible API."""

    name = "reacher"

    def __init__(
        self,
        base_url: str,
        bridge: AsyncBridge,
        *,
        api_key: str | None = None,
        auth_header: str = "Authorization",
        path: str = "/v1/check_email",
        timeout_s: float = 30.0,
        rate: TokenBucket | None = None,
        breaker: CircuitBreaker | None = None,
        concurrency: int = 8,
        batch_budget_s: float = 60.0,
        cache_ttl_s: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bridge = bridge
        self.path = path
        self.rate = rate or TokenBucket(5.0, burst=5)
        self.breaker = breaker or CircuitBreaker()
        self.concurrency = concurrency
        self.batch_budget_s = batch_budget_s
        self.cache_ttl_s = cache_ttl_s
        self.clock = clock
        self.calls = 0
        self._cache: dict[str, tuple[float, ProviderOutcome]] = {}
        headers = {auth_header: api_key} if api_key else {}
        self._client_args: dict[str, Any] = {
            "base_url": base_url,
            "headers": headers,
            "timeout": timeout_s,
        }
        self._client: httpx.AsyncClient | None = None

    def verify_many(self, emails: Collection[str]) -> Mapping[str, ProviderOutcome]:
        now = self.clock()
        out: dict[str, ProviderOutcome] = {}
        todo: list[str] = []
        for email in dict.fromkeys(emails):
            hit = self._cache.get(email)
            if hit is not None and hit[0] > now:
                out[email] = hit[1]
            else:
                todo.append(email)
        if todo:
            out.update(self.bridge.run(self._check_all(todo)))
        return out

    def close(self) -> None:
        if self._client is not None:
            self.bridge.run(self._client.aclose())
            self._client = None

    async def _check_all(self, emails: list[str]) -> dict[str, ProviderOutcome]:
        if self._client is None:
            self._client = httpx.AsyncClient(**self._client_args)
        client = self._client
        gate = asyncio.Semaphore(self.concurrency)
        results: dict[str, ProviderOutcome] = {}

        async def one(email: str) -> None:
            async with gate:
                if not self.breaker.allow():
                    results[email] = UNAVAILABLE
                    return
                await self.rate.take()
                results[email] = await self._check(client, email)

        tasks = [asyncio.ensure_future(one(e)) for e in emails]
        _, pending = await asyncio.wait(tasks, timeout=self.batch_budget_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("external verifier: %d checks skipped past the budget", len(pending))
        return {e: results.get(e, SKIPPED) for e in emails}

    async def _check(self, client: httpx.AsyncClient, email: str) -> ProviderOutcome:
        self.calls += 1
        try:
            response = await client.post(self.path, json={"to_email": email})
        except httpx.HTTPError as exc:
            log.warning("external verifier: %s: %s", type(exc).__name__, exc)
            self.breaker.failure()
            return ERROR
        if response.status_code != 200:
            log.warning("external verifier answered %d", response.status_code)
            self.breaker.failure()
            return ERROR
        try:
            body = response.json()
        except ValueError:
            self.breaker.failure()
            return ERROR
        self.breaker.success()
        outcome = outcome_of(body if isinstance(body, dict) else {})
        if outcome.verdict is not None:
            if len(self._cache) >= _CACHE_MAX:
                for key in list(self._cache)[: _CACHE_MAX // 10]:
                    del self._cache[key]
            self._cache[email] = (self.clock() + self.cache_ttl_s, outcome)
        return outcome


__all__ = ["ReacherVerifier", "outcome_of"]
