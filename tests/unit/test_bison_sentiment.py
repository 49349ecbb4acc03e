"""Reply sentiment: the documented rules, as a table."""

from __future__ import annotations

import pytest

from leadstream.bison import SENTIMENTS, classify
from leadstream.bison.sentiment import new_text

CASES = [
    # (reply text, interested flag, automated flag) → sentiment
    ("Yes, I'm interested — can you send more info?", None, None, "interested"),
    ("Sounds good, let's talk next week.", None, None, "interested"),
    ("What's the pricing for a team of 10?", None, None, "interested"),
    ("Please give me a call on Tuesday", None, None, "interested"),
    ("Thanks", True, None, "interested"),  # Email Bison's own flag
    ("Not interested.", None, None, "not_interested"),
    ("NOT INTERESTED!!", None, None, "not_interested"),
    ("I'm not really interested, thanks", None, None, "not_interested"),
    ("No thanks, we're all set with our current provider.", None, None, "not_interested"),
    ("Not a good fit for us right now", None, None, "not_interested"),
    ("Not interested", True, None, "not_interested"),  # words beat the flag
    ("Please remove me from your list.", None, None, "unsubscribe_request"),
    ("UNSUBSCRIBE", None, None, "unsubscribe_request"),
    ("Stop emailing me.", None, None, "unsubscribe_request"),
    ("Not interested, take me off your list", None, None, "unsubscribe_request"),
    (
        "I am out of the office until 3 Dec with limited access to email.",
        None,
        None,
        "out_of_office",
    ),
    ("Automatic reply: On annual leave", None, None, "out_of_office"),
    ("Thanks for reaching out", None, True, "out_of_office"),  # the automated flag
    ("I'm on vacation, but I'm interested, call me", None, None, "out_of_office"),
    ("Who is this?", None, None, "neutral"),
    ("", None, None, "neutral"),
    (None, None, None, "neutral"),
    (
        "Got it.\n\nOn Mon, 1 Dec 2026 at 09:00, Sales <s@x.example> wrote:\n> Interested in a "
        "call?",
        None,
        None,
        "neutral",
    ),  # quoted history does not count
    ("> are you interested?\nno thank you", None, None, "not_interested"),
]


@pytest.mark.parametrize(("text", "flag", "auto", "want"), CASES)
def test_sentiment_table(text: str | None, flag: bool | None, auto: bool | None, want: str) -> None:
    assert want in SENTIMENTS
    assert classify(text, interested_flag=flag, automated_reply=auto) == want


def test_quoted_history_is_cut() -> None:
    text = "Yes please\n-----Original Message-----\nFrom: a@b.example\nnot interested"
    assert new_text(text).strip() == "Yes please"
