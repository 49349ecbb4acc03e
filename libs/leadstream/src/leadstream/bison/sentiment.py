"""Reply sentiment by rules and a lexicon (documented in ``docs/bison.md``, tested by a table).

Five classes: ``interested``, ``not_interested``, ``out_of_office``, ``unsubscribe_request``,
``neutral``. The rules, first match wins:

1. Email Bison flagged the reply as an automated reply, or the text reads like an
   auto-responder (out of office, on leave, automatic reply …) → ``out_of_office``;
2. the person asks to stop (unsubscribe, remove me, take me off, stop emailing …) →
   ``unsubscribe_request`` (bison-sync suppresses the address, like an unsubscribe);
3. a refusal (not interested, no thanks, not a fit, we're all set …), or a negation up to two
   words before "interest" ("not really interested", "never been interested") →
   ``not_interested``;
4. interest (interested, let's talk, send me more, book a call, pricing …), or Email Bison's
   own ``interested`` flag → ``interested``;
5. otherwise ``neutral``.

Only the new text counts: quoted history (lines starting with ``>`` and everything after an
``On … wrote:`` line or an ``-----Original Message-----`` marker) is cut first. Matching is on
lower-cased words with punctuation folded to spaces, so "Not interested." and "NOT
INTERESTED!!" read the same; refusals are checked before interest so that "not interested"
is never read as "interested".
"""

from __future__ import annotations

import re
from typing import Literal

Sentiment = Literal[
    "interested", "not_interested", "out_of_office", "unsubscribe_request", "neutral"
]
SENTIMENTS: tuple[Sentiment, ...] = (
    "interested",
    "not_interested",
    "out_of_office",
    "unsubscribe_request",
    "neutral",
)

OUT_OF_OFFICE = (
    "out of office",
    "out of the office",
    "away from the office",
    "away from my desk until",
    "automatic reply",
    "auto reply",
    "autoreply",
    "on annual leave",
    "on leave",
    "on vacation",
    "on holiday",
    "on maternity leave",
    "on paternity leave",
    "currently away",
    "limited access to email",
    "limited access to my email",
    "i will be back",
    "i ll be back",
    "will return on",
    "back in the office",
    "no longer with the company",
    "no longer with",
)
UNSUBSCRIBE = (
    "unsubscribe",
    "remove me",
    "remove my email",
    "remove us",
    "take me off",
    "take us off",
    "stop emailing",
    "stop sending",
    "stop contacting",
    "do not contact",
    "don t contact",
    "do not email",
    "don t email",
    "opt out",
    "opt me out",
    "no more emails",
    "leave me alone",
)
NOT_INTERESTED = (
    "not interested",
    "no interest",
    "not a fit",
    "not a good fit",
    "not looking",
    "no thanks",
    "no thank you",
    "not at this time",
    "not right now",
    "we re all set",
    "we are all set",
    "already have a provider",
    "already have a supplier",
    "not for us",
    "pass on this",
    "we ll pass",
    "we will pass",
    "no need",
    "not relevant",
)
INTERESTED = (
    "interested",
    "sounds good",
    "sounds great",
    "let s talk",
    "lets talk",
    "let s chat",
    "happy to chat",
    "set up a call",
    "book a call",
    "schedule a call",
    "jump on a call",
    "call me",
    "give me a call",
    "send me more",
    "send more info",
    "more information",
    "more info",
    "tell me more",
    "learn more",
    "what s the price",
    "pricing",
    "a quote",
    "how much",
    "when are you free",
    "are you available",
    "count me in",
    "yes please",
)

_QUOTE_START = re.compile(
    r"^\s*(on .{0,200} wrote:|-{2,}\s*original message\s*-{2,}|from:\s.+@.+)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_FOLD = re.compile(r"[^a-z0-9]+")
_NEGATED_INTEREST = re.compile(
    r" (not|never|no longer|isn t|aren t|wasn t|am not|m not|re not) (\w+ ){0,2}interest"
)


def new_text(text: str) -> str:
    """The reply without quoted history."""
    cut = _QUOTE_START.search(text)
    if cut:
        text = text[: cut.start()]
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def _folded(text: str) -> str:
    return f" {_FOLD.sub(' ', text.lower()).strip()} "


def _has(folded: str, phrases: tuple[str, ...]) -> bool:
    return any(f" {p} " in folded for p in phrases)


def classify(
    text: str | None,
    *,
    interested_flag: bool | None = None,
    automated_reply: bool | None = None,
) -> Sentiment:
    """The sentiment of one reply (see the module for the rules)."""
    folded = _folded(new_text(text or ""))
    if automated_reply or _has(folded, OUT_OF_OFFICE):
        return "out_of_office"
    if _has(folded, UNSUBSCRIBE):
        return "unsubscribe_request"
    if _has(folded, NOT_INTERESTED) or _NEGATED_INTEREST.search(folded):
        return "not_interested"
    if interested_flag or _has(folded, INTERESTED):
        return "interested"
    return "neutral"
