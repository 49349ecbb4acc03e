"""The Email Bison client against the fake (over an in-memory transport): pagination,
per-lead 422s, 429 with Retry-After, 5xx and timeouts with backoff, attaches that must not be
repeated blind, workspaces."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from leadstream.bison import (
    BisonAuthError,
    BisonClient,
    BisonOutcomeUnknownError,
    BisonRateLimitedError,
    BisonRequestError,
    BisonUnavailableError,
    BisonValidationError,
    RetryPolicy,
    api_root,
    lead_payload,
    variable_names,
)
from tests.support.fake_bison import FakeBison, Fault, fake_transport


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> FakeBison:
    return FakeBison()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ws(fake: FakeBison) -> tuple[int, str]:
    return fake.add_workspace()


@pytest.fixture
def client(fake: FakeBison, ws: tuple[int, str], sleeps: Sleeps) -> Iterator[BisonClient]:
    with BisonClient(
        "https://bison.example/",
        ws[1],
        transport=fake_transport(fake),
        sleep=sleeps,
        retry=RetryPolicy(max_attempts=3, base_s=1.0, cap_s=4.0, max_rate_limited=3),
    ) as c:
        yield c


def lead(n: int, **kw: object) -> dict[str, object]:
    return {"email": f"lead{n}@acme.example", "first_name": "Ann", "last_name": f"L{n}", **kw}


def test_api_root() -> None:
    assert api_root("https://x.example") == "https://x.example/api"
    assert api_root("https://x.example/api/") == "https://x.example/api"


def test_pages_follow_laravel_meta(
    client: BisonClient, fake: FakeBison, ws: tuple[int, str]
) -> None:
    for i in range(32):
        fake.add_campaign(ws[0], f"C{i}")
    pages = list(client.pages("/campaigns", {"per_page": 100}))  # per_page is ignored
    assert [len(p.items) for p in pages] == [15, 15, 2]
    assert [p.page for p in pages] == [1, 2, 3]
    assert pages[0].last_page == 3


def test_upsert_is_keyed_by_email_and_returns_ids(client: BisonClient, fake: FakeBison) -> None:
    first = client.upsert_leads([lead(1), lead(2)])
    again = client.upsert_leads([lead(1, title="CEO")])
    assert again[0]["id"] == first[0]["id"]
    assert again[0]["title"] == "CEO"
    assert again[0]["last_name"] == "L1"  # patch keeps what was not sent
    assert fake.created_count("lead1@acme.example") == 1


def test_per_lead_422_names_the_index(client: BisonClient) -> None:
    with pytest.raises(BisonValidationError) as err:
        client.upsert_leads([lead(1), {"email": "not-an-email"}, {"email": "new@acme.example"}])
    by_index = err.value.by_index("leads")
    assert set(by_index) == {1, 2}
    assert "valid email" in by_index[1]
    assert "first_name" in by_index[2]


def test_more_than_500_leads_is_refused_before_sending(client: BisonClient) -> None:
    with pytest.raises(ValueError, match="500"):
        client.upsert_leads([lead(i) for i in range(501)])
    assert client.requests_sent == 0


def test_429_waits_retry_after_then_succeeds(
    client: BisonClient, fake: FakeBison, sleeps: Sleeps
) -> None:
    fake.inject(Fault(path="/api/users", status=429, times=2, retry_after="7"))
    assert client.check()["data"]["team_id"]
    assert sleeps == [7.0, 7.0]


def test_429_without_retry_after_uses_the_default_and_gives_up(
    client: BisonClient, fake: FakeBison, sleeps: Sleeps
) -> None:
    fake.inject(Fault(path="/api/users", status=429, times=10))
    with pytest.raises(BisonRateLimitedError):
        client.check()
    assert sleeps == [5.0, 5.0, 5.0]


def test_5xx_backs_off_with_jitter_then_gives_up(
    client: BisonClient, fake: FakeBison, sleeps: Sleeps
) -> None:
    fake.inject(Fault(path="/api/campaigns", status=502, times=2))
    assert client.campaign_page(1).page == 1
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0  # half-jitter, doubling
    assert 1.0 <= sleeps[1] <= 2.0
    fake.inject(Fault(path="/api/campaigns", status=500, times=5))
    with pytest.raises(BisonUnavailableError):
        client.campaign_page(1)


def test_timeouts_are_retried_for_repeatable_calls(fake: FakeBison, ws: tuple[int, str]) -> None:
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return fake_transport(fake).handle_request(request)

    with BisonClient(
        "http://b", ws[1], transport=httpx.MockTransport(flaky), sleep=lambda _s: None
    ) as c:
        assert c.upsert_leads([lead(1)])[0]["email"] == "lead1@acme.example"
    assert len(calls) == 2


def test_attach_is_not_repeated_blind(
    client: BisonClient, fake: FakeBison, ws: tuple[int, str], sleeps: Sleeps
) -> None:
    cid = fake.add_campaign(ws[0], "A")
    ids = [str(x["id"]) for x in client.upsert_leads([lead(1), lead(2)])]
    fake.inject(Fault(path="attach-leads", status=500, when="after"))  # applied, then 500
    with pytest.raises(BisonOutcomeUnknownError):
        client.attach_leads(str(cid), ids)
    assert sleeps == []
    assert sorted(fake.attach_sends(cid).values()) == [1, 1]
    found = client.find_leads("lead1@acme.example")
    assert found[0]["lead_campaign_data"] == [{"campaign_id": cid, "status": "in_sequence"}]


def test_attach_refuses_a_lead_in_another_sequence(
    client: BisonClient, fake: FakeBison, ws: tuple[int, str]
) -> None:
    a, b = fake.add_campaign(ws[0], "A"), fake.add_campaign(ws[0], "B")
    ids = [str(x["id"]) for x in client.upsert_leads([lead(1), lead(2)])]
    client.attach_leads(str(a), ids[:1])
    with pytest.raises(BisonValidationError) as err:
        client.attach_leads(str(b), ids)
    assert set(err.value.by_index("lead_ids")) == {0}
    assert "other sequences" in str(err.value)
    assert fake.campaign_leads(b) == []  # nothing was added
    client.attach_leads(str(b), ids, allow_parallel_sending=True)
    assert len(fake.campaign_leads(b)) == 2


def test_other_workspace_is_403_and_bad_key_401(client: BisonClient, fake: FakeBison) -> None:
    other_ws, other_key = fake.add_workspace("Other agency")
    theirs = fake.add_campaign(other_ws, "Theirs")
    with pytest.raises(BisonAuthError) as err:
        client.attach_leads(str(theirs), ["1"])
    assert err.value.status == 403
    with (
        BisonClient("http://b", "99|nope", transport=fake_transport(fake)) as bad,
        pytest.raises(BisonAuthError) as err,
    ):
        bad.check()
    assert err.value.status == 401
    assert other_key != "99|nope"


def test_stats_of_a_draft_campaign_is_400(
    client: BisonClient, fake: FakeBison, ws: tuple[int, str]
) -> None:
    draft = fake.add_campaign(ws[0], "Draft", status="draft")
    live = fake.add_campaign(ws[0], "Live")
    assert client.campaign_stats(str(live), date(2026, 11, 1), date(2026, 11, 30))["emails_sent"]
    with pytest.raises(BisonRequestError):
        client.campaign_stats(str(draft), date(2026, 11, 1), date(2026, 11, 30))


def test_custom_variables_must_exist_and_creating_twice_is_fine(client: BisonClient) -> None:
    payload = lead_payload(
        {
            "email": "x@acme.example",
            "first_name": "X",
            "last_name": None,
            "phone_e164": "+15551234567",
            "custom_fields": {"policy": "auto"},
        }
    )
    assert "last_name" not in payload
    assert variable_names([payload]) == {"phone", "policy"}
    with pytest.raises(BisonValidationError):
        client.upsert_leads([{**payload, "last_name": "Y"}])
    for name in sorted(variable_names([payload])):
        client.create_custom_variable(name)
        client.create_custom_variable(name)
    assert sorted(client.custom_variables()) == ["phone", "policy"]
    assert client.upsert_leads([{**payload, "last_name": "Y"}])[0]["custom_variables"]
