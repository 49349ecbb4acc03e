"""The Email Bison HTTP client (``shared/reference/email-bison-api.md`` is the contract).

One :class:`BisonClient` per API key. Every request waits for the shared rate limiter, then:

- 429 → wait ``Retry-After`` (seconds or an HTTP date; backoff when absent), holding every
  instance back through the limiter, and send again (up to ``max_rate_limited``);
- 5xx, timeouts, dropped connections → backoff with jitter and send again (up to
  ``max_attempts``) — but only for calls that are safe to repeat. Attaching leads is not: once
  it was sent without an answer, :class:`BisonOutcomeUnknownError` tells the caller to find
  out what happened first. A connection that was never made is always safe to retry;
- 401/403, 404, 422, other 4xx → a typed error at once.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx

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
from leadstream.bison.ratelimit import RateLimiter, Unlimited

MAX_LEADS_PER_CALL = 500
"""Email Bison's limit for the bulk lead endpoints and (by integrators' practice) attaches."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5  # 5xx / timeouts, per request
    base_s: float = 0.5
    cap_s: float = 20.0
    max_rate_limited: int = 20  # 429s in a row before giving up
    default_retry_after_s: float = 5.0  # 429 without Retry-After


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    page: int
    last_page: int


def api_root(base_url: str) -> str:
    """``https://x.example`` or ``https://x.example/api`` → ``https://x.example/api``."""
    root = base_url.strip().rstrip("/")
    return root if root.endswith("/api") else f"{root}/api"


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    ceiling = min(policy.cap_s, policy.base_s * 2 ** max(0, attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


class BisonClient:
    """A synchronous client over httpx; close it (or use it as a context manager)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        limiter: RateLimiter | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.limiter: RateLimiter = limiter or Unlimited()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=api_root(base_url),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )
        self.requests_sent = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BisonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ core

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        repeatable: bool = True,
    ) -> Any:
        """Send one call with the retry policy above; the decoded JSON body."""
        failures = 0
        limited = 0
        while True:
            self.limiter.acquire()
            self.requests_sent += 1
            try:
                resp = self._http.request(method, path, json=json, params=params)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures += 1  # never reached the server: always safe to send again
                self._pause_or_raise(failures, f"{method} {path}: {exc!r}", None)
                continue
            except httpx.TransportError as exc:  # read timeout, dropped connection …
                if not repeatable:
                    raise BisonOutcomeUnknownError(f"{method} {path}: no answer: {exc!r}") from exc
                failures += 1
                self._pause_or_raise(failures, f"{method} {path}: {exc!r}", None)
                continue
            status = resp.status_code
            if status == 429:
                limited += 1
                wait = _retry_after(resp.headers.get("Retry-After"), time.time())
                if limited > self.retry.max_rate_limited:
                    raise BisonRateLimitedError(
                        f"{method} {path}: still rate limited after {limited - 1} waits",
                        retry_after_s=wait,
                    )
                wait = self.retry.default_retry_after_s if wait is None else wait
                self.limiter.penalize(wait)
                self._sleep(wait)
                continue
            if status >= 500:
                if not repeatable:
                    raise BisonOutcomeUnknownError(f"{method} {path}: {status}", status=status)
                failures += 1
                self._pause_or_raise(failures, f"{method} {path}: {status}", status)
                continue
            if status >= 400:
                raise _client_error(method, path, resp)
            if not resp.content:
                return None
            return resp.json()

    def _pause_or_raise(self, failures: int, what: str, status: int | None) -> None:
        if failures >= self.retry.max_attempts:
            raise BisonUnavailableError(f"{what} (after {failures} attempts)", status=status)
        self._sleep(_backoff(failures, self.retry, self._rng))

    def page(self, path: str, page: int = 1, params: Mapping[str, Any] | None = None) -> Page:
        """One page of a Laravel-paginated list (15 items; ``per_page`` is ignored)."""
        body = self.request("GET", path, params={**(params or {}), "page": page})
        meta = body.get("meta") or {}
        return Page(
            items=list(body.get("data") or []),
            page=int(meta.get("current_page") or page),
            last_page=int(meta.get("last_page") or page),
        )

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Page]:
        """Every page, first to last."""
        n = 1
        while True:
            current = self.page(path, n, params)
            yield current
            if current.page >= current.last_page:
                return
            n = current.page + 1

    # ------------------------------------------------------------------ endpoints

    def check(self) -> dict[str, Any]:
        """``GET /api/users``: the cheap credential check."""
        return dict(self.request("GET", "/users") or {})

    def custom_variables(self) -> list[str]:
        """Names of the workspace's custom variables."""
        body = self.request("GET", "/custom-variables")
        names = [str(v["name"]) for v in body.get("data") or []]
        meta = body.get("meta") or {}
        last = int(meta.get("last_page") or 1)
        for n in range(2, last + 1):
            names += [str(v["name"]) for v in self.page("/custom-variables", n).items]
        return names

    def create_custom_variable(self, name: str) -> None:
        """Create one; a name that exists already (another instance was first) is fine."""
        try:
            self.request("POST", "/custom-variables", json={"name": name})
        except BisonValidationError as exc:
            if not any("taken" in m or "exists" in m for ms in exc.errors.values() for m in ms):
                raise

    def upsert_leads(
        self, leads: Sequence[Mapping[str, Any]], *, behavior: str = "patch"
    ) -> list[dict[str, Any]]:
        """``POST /api/leads/create-or-update/multiple``: create or update by email; returns the
        lead objects (ids also for unchanged leads). Repeating it is harmless."""
        if len(leads) > MAX_LEADS_PER_CALL:
            raise ValueError(f"at most {MAX_LEADS_PER_CALL} leads per call")
        body = self.request(
            "POST",
            "/leads/create-or-update/multiple",
            json={"existing_lead_behavior": behavior, "leads": list(leads)},
        )
        return list(body.get("data") or [])

    def attach_leads(
        self, campaign_id: str, lead_ids: Sequence[str], *, allow_parallel_sending: bool = False
    ) -> dict[str, Any]:
        """``POST /api/campaigns/{id}/leads/attach-leads``. Not repeatable: see the module."""
        if len(lead_ids) > MAX_LEADS_PER_CALL:
            raise ValueError(f"at most {MAX_LEADS_PER_CALL} leads per call")
        ids: list[int | str] = [int(i) if str(i).isdigit() else i for i in lead_ids]
        body = self.request(
            "POST",
            f"/campaigns/{campaign_id}/leads/attach-leads",
            json={"lead_ids": ids, "allow_parallel_sending": allow_parallel_sending},
            repeatable=False,
        )
        return dict(body.get("data") or {}) if isinstance(body, dict) else {}

    def find_leads(self, email_address: str) -> list[dict[str, Any]]:
        """``GET /api/leads?search=<email>`` (first page: an email is unique per workspace)."""
        return self.page("/leads", 1, {"search": email_address}).items

    def campaign_page(self, page: int = 1, **filters: Any) -> Page:
        return self.page("/campaigns", page, filters)

    def campaign_stats(self, campaign_id: str, start: date, end: date) -> dict[str, Any]:
        """``POST /api/campaigns/{id}/stats`` (a POST that reads; repeatable)."""
        body = self.request(
            "POST",
            f"/campaigns/{campaign_id}/stats",
            json={"start_date": start.isoformat(), "end_date": end.isoformat()},
        )
        return dict(body.get("data") or {})

    def reply_page(self, page: int = 1, **filters: Any) -> Page:
        return self.page("/replies", page, filters)


def _client_error(method: str, path: str, resp: httpx.Response) -> BisonError:
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or resp.reason_phrase or status)
    what = f"{method} {path}: {status} {message}"
    if status in (401, 403):
        return BisonAuthError(what, status=status)
    if status == 404:
        return BisonNotFoundError(what, status=status)
    if status == 422:
        errors = body.get("errors")
        return BisonValidationError(message, errors if isinstance(errors, dict) else None)
    return BisonRequestError(what, status=status)


def today_utc() -> date:
    return datetime.now(UTC).date()
