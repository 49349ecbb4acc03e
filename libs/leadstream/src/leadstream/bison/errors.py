"""What can go wrong talking to Email Bison, typed so callers choose the policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from leadstream.errors import LeadStreamError


class BisonError(LeadStreamError):
    """Base of Email Bison client errors."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BisonAuthError(BisonError):
    """401/403: a bad key, or a record of another workspace. Not retried."""


class BisonNotFoundError(BisonError):
    """404."""


class BisonRequestError(BisonError):
    """Another 4xx (400 e.g. stats of a draft campaign, 405 …). Not retried."""


class BisonValidationError(BisonError):
    """422 with ``{"message", "errors": {"<field path>": ["…"]}}``. Not retried as is: the
    caller removes what was refused (``leads.3.email`` → the fourth lead) and sends the rest."""

    def __init__(self, message: str, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(message, status=422)
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in (errors or {}).items()}

    def by_index(self, collection: str) -> dict[int, str]:
        """Errors of ``<collection>.<n>[.<field>]`` paths, joined per item index."""
        out: dict[int, list[str]] = {}
        prefix = f"{collection}."
        for path, messages in self.errors.items():
            if not path.startswith(prefix):
                continue
            head = path[len(prefix) :].split(".", 1)[0]
            if head.isdigit():
                out.setdefault(int(head), []).extend(f"{path}: {m}" for m in messages)
        return {i: "; ".join(msgs) for i, msgs in out.items()}


class BisonUnavailableError(BisonError):
    """5xx or timeouts that outlasted the retries: transient, try the work again later."""


class BisonRateLimitedError(BisonUnavailableError):
    """429s that outlasted the retries."""

    def __init__(self, message: str, *, retry_after_s: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after_s = retry_after_s


class BisonOutcomeUnknownError(BisonUnavailableError):
    """A call that is not safe to repeat (attach) was sent, and no answer came back (timeout,
    5xx): it may or may not have been applied. The caller must find out before repeating it."""
