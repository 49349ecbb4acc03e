"""The fake Email Bison: one object holding state, faults and accounting; :meth:`handle`
answers one HTTP request (the ASGI app in :mod:`.app` only adapts)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.support.fake_bison.faults import Fault, SlidingWindow
from tests.support.fake_bison.model import EMAIL, Campaign, Data, Lead, now_iso

PER_PAGE = 15
MAX_LEADS = 500
REFUSED = (
    "No leads were added because they are either in other sequences, have previously bounced, "
    "or are unsubscribed."
)


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request as the fake saw it (for rate accounting)."""

    at: float
    key_id: str | None
    method: str
    path: str
    query: str
    status: int


class Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


Hook = Callable[[Seen], None]


class FakeBison:
    def __init__(
        self,
        *,
        rate_per_minute: float | None = None,
        window_s: float = 60.0,
        instance_url: str = "http://fake-bison.local",
    ) -> None:
        self.lock = threading.RLock()
        self.data = Data()
        self.instance_url = instance_url
        self.limiter = SlidingWindow(rate_per_minute, window_s) if rate_per_minute else None
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.hooks: list[Hook] = []
        self.deliveries: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ test API

    def add_workspace(self, name: str = "Agency") -> tuple[int, str]:
        with self.lock:
            return self.data.add_workspace(name)

    def add_campaign(self, workspace_id: int, name: str, status: str = "active") -> int:
        with self.lock:
            return self.data.add_campaign(workspace_id, name, status)

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def set_rate(self, per_minute: float | None, window_s: float = 60.0) -> None:
        with self.lock:
            self.limiter = SlidingWindow(per_minute, window_s) if per_minute else None

    def created_count(self, email: str, workspace_id: int | None = None) -> int:
        with self.lock:
            return sum(
                n
                for (ws, e), n in self.data.created.items()
                if e == email.lower() and workspace_id in (None, ws)
            )

    def attach_sends(self, campaign_id: int) -> dict[int, int]:
        """Lead id → how many applied attach calls carried it, for one campaign."""
        with self.lock:
            return {
                lid: n for (cid, lid), n in self.data.attach_sends.items() if cid == campaign_id
            }

    def campaign_leads(self, campaign_id: int) -> list[int]:
        with self.lock:
            return list(self.data.campaigns[campaign_id].lead_ids)

    def lead(self, workspace_id: int, email: str) -> Lead | None:
        with self.lock:
            return self.data.lead_for(workspace_id, email)

    def requests(self, path: str | None = None, *, accepted_only: bool = False) -> list[Seen]:
        with self.lock:
            return [
                s
                for s in self.seen
                if (path is None or re.search(path, s.path))
                and (not accepted_only or s.status != 429)
            ]

    def rate(self, path: str | None = None) -> tuple[int, float]:
        """(requests, seconds from the first to the last) of accepted requests."""
        seen = self.requests(path, accepted_only=True)
        if len(seen) < 2:
            return len(seen), 0.0
        return len(seen), seen[-1].at - seen[0].at

    def max_in_window(self, window_s: float, path: str | None = None) -> int:
        """The most accepted requests in any ``window_s`` span."""
        times = [s.at for s in self.requests(path, accepted_only=True)]
        best = 0
        j = 0
        for i, t in enumerate(times):
            while times[j] <= t - window_s:
                j += 1
            best = max(best, i - j + 1)
        return best

    # ------------------------------------------------------------------ one request

    def handle(self, method: str, path: str, query: str, body: bytes, auth: str | None) -> Response:
        method = method.upper()
        token = auth[7:].strip() if auth and auth.lower().startswith("bearer ") else None
        key_id = token.split("|", 1)[0] if token and "|" in token else None
        with self.lock:
            now = time.monotonic()
            fault = next((f for f in self.faults if f.matches(method, path, query)), None)
            if fault is not None:
                fault.hits += 1
                if fault.when == "before" and not fault.delay_s:
                    resp = self._fault_response(fault)
                    self._log(now, key_id, method, path, query, resp.status)
                    return resp
            if self.limiter is not None and token is not None:
                wait = self.limiter.check(token, now)
                if wait is not None:
                    self._log(now, key_id, method, path, query, 429)
                    return Response(
                        429, {"message": "Too Many Attempts."}, {"Retry-After": str(int(wait))}
                    )
            try:
                resp = self._route(self._workspace(token), method, path, parse_qs(query), body)
            except Refused as refused:
                resp = refused.response
            if fault is not None and fault.when == "after" and not fault.delay_s:
                resp = self._fault_response(fault)  # applied, but the client hears a failure
            seen = self._log(now, key_id, method, path, query, resp.status)
            hooks = list(self.hooks)
        for hook in hooks:
            hook(seen)
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)  # applied, answered too late for the client's timeout
        return resp

    def _fault_response(self, fault: Fault) -> Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return Response(fault.status, {"message": "Injected failure."}, headers)

    def _log(
        self, at: float, key_id: str | None, method: str, path: str, query: str, status: int
    ) -> Seen:
        seen = Seen(at, key_id, method, path, query, status)
        self.seen.append(seen)
        return seen

    def _workspace(self, token: str | None) -> int:
        ws = self.data.keys.get(token or "")
        if ws is None:
            raise Refused(Response(401, {"message": "Unauthenticated."}))
        return ws

    # ------------------------------------------------------------------ routing

    def _route(
        self, ws: int, method: str, path: str, q: dict[str, list[str]], body: bytes
    ) -> Response:
        p = path.rstrip("/")
        payload: Any = None
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                return Response(400, {"message": "Malformed JSON."})
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", r"/api/users", lambda: self._users(ws)),
            ("GET", r"/api/custom-variables", lambda: self._variables(ws, q)),
            ("POST", r"/api/custom-variables", lambda: self._add_variable(ws, payload)),
            ("POST", r"/api/leads/create-or-update/multiple", lambda: self._upsert(ws, payload)),
            ("GET", r"/api/leads", lambda: self._search_leads(ws, q)),
            ("GET", r"/api/campaigns", lambda: self._campaigns(ws, q)),
            ("GET", r"/api/replies", lambda: self._replies(ws, q)),
            ("GET", r"/api/webhook-url", lambda: self._webhooks(ws)),
            ("POST", r"/api/webhook-url", lambda: self._add_webhook(ws, payload)),
        ]
        same_path = [(m, fn) for m, pattern, fn in routes if p == pattern]
        for m, fn in same_path:
            if m == method:
                return fn()
        if same_path:
            return Response(405, {"message": "Method not allowed."})
        match = re.fullmatch(r"/api/campaigns/(\d+)(/.*)?", p)
        if match:
            campaign = self._campaign(ws, int(match.group(1)))
            rest = match.group(2) or ""
            if rest == "" and method == "GET":
                return Response(200, {"data": campaign.as_json()})
            if rest == "/leads/attach-leads" and method == "POST":
                return self._attach(ws, campaign, payload)
            if rest == "/stats" and method == "POST":
                return self._stats(campaign, payload)
            return Response(405, {"message": "Method not allowed."})
        return Response(404, {"message": "Not found."})

    def _campaign(self, ws: int, cid: int) -> Campaign:
        campaign = self.data.campaigns.get(cid)
        if campaign is None:
            raise Refused(Response(404, {"message": "Campaign not found."}))
        if campaign.workspace_id != ws:
            raise Refused(Response(403, {"message": "This action is unauthorized."}))
        return campaign

    # ------------------------------------------------------------------ endpoints

    def _users(self, ws: int) -> Response:
        return Response(200, {"data": {"id": 1, "name": "API user", "team_id": ws}})

    def _variables(self, ws: int, q: dict[str, list[str]]) -> Response:
        items = [{"id": vid, "name": n} for n, vid in sorted(self.data.variables[ws].items())]
        return Response(200, _paginate(items, q, "/api/custom-variables", self.instance_url))

    def _add_variable(self, ws: int, payload: Any) -> Response:
        name = (payload or {}).get("name")
        if not isinstance(name, str) or not name.strip():
            return _invalid({"name": ["The name field is required."]})
        if name in self.data.variables[ws]:
            return _invalid({"name": ["The name has already been taken."]})
        vid = self.data.next_id()
        self.data.variables[ws][name] = vid
        return Response(201, {"data": {"id": vid, "name": name}})

    def _upsert(self, ws: int, payload: Any) -> Response:
        payload = payload or {}
        leads = payload.get("leads")
        behavior = payload.get("existing_lead_behavior", "put")
        if not isinstance(leads, list) or not leads:
            return _invalid({"leads": ["The leads field is required."]})
        if len(leads) > MAX_LEADS:
            return _invalid(
                {"leads": [f"The leads field must not have more than {MAX_LEADS} items."]}
            )
        if behavior not in ("put", "patch"):
            return _invalid(
                {"existing_lead_behavior": ["The selected existing lead behavior is invalid."]}
            )
        errors: dict[str, list[str]] = {}
        known = self.data.variables[ws]
        for i, lead in enumerate(leads):
            email = lead.get("email") if isinstance(lead, dict) else None
            if not isinstance(email, str) or not EMAIL.match(email):
                errors[f"leads.{i}.email"] = [
                    f"The leads.{i}.email field must be a valid email address."
                ]
                continue
            if self.data.lead_for(ws, email) is None:
                for name in ("first_name", "last_name"):
                    if not lead.get(name):
                        errors[f"leads.{i}.{name}"] = [f"The leads.{i}.{name} field is required."]
            for j, var in enumerate(lead.get("custom_variables") or []):
                if var.get("name") not in known:
                    errors[f"leads.{i}.custom_variables.{j}.name"] = [
                        "The selected custom variable does not exist."
                    ]
        if errors:
            return _invalid(errors)
        out = []
        for lead in leads:
            out.append(self._upsert_one(ws, lead, behavior).as_json())
        return Response(200, {"data": out})

    def _upsert_one(self, ws: int, data: dict[str, Any], behavior: str) -> Lead:
        email = data["email"].lower()
        lead = self.data.lead_for(ws, email)
        fields = ("first_name", "last_name", "title", "company", "notes")
        variables = {v["name"]: str(v.get("value")) for v in data.get("custom_variables") or []}
        if lead is None:
            lead = Lead(self.data.next_id(), ws, email)
            self.data.leads[lead.id] = lead
            self.data.lead_by_email[(ws, email)] = lead.id
            self.data.created[(ws, email)] += 1
            behavior = "put"
        for name in fields:
            if name in data or behavior == "put":
                setattr(lead, name, data.get(name))
        if behavior == "put":
            lead.custom_variables = variables
        else:
            lead.custom_variables.update(variables)
        lead.updated_at = now_iso()
        return lead

    def _search_leads(self, ws: int, q: dict[str, list[str]]) -> Response:
        term = (q.get("search") or [""])[0].lower()
        items = [
            lead.as_json()
            for lead in self.data.leads.values()
            if lead.workspace_id == ws and term in lead.email
        ]
        return Response(200, _paginate(items, q, "/api/leads", self.instance_url))

    def _attach(self, ws: int, campaign: Campaign, payload: Any) -> Response:
        payload = payload or {}
        ids = payload.get("lead_ids")
        parallel = bool(payload.get("allow_parallel_sending"))
        if not isinstance(ids, list) or not ids:
            return _invalid({"lead_ids": ["The lead ids field is required."]})
        if len(ids) > MAX_LEADS:
            return _invalid(
                {"lead_ids": [f"The lead ids field must not have more than {MAX_LEADS} items."]}
            )
        errors: dict[str, list[str]] = {}
        leads: list[Lead] = []
        for i, raw in enumerate(ids):
            lead = self.data.leads.get(int(raw)) if str(raw).isdigit() else None
            if lead is None or lead.workspace_id != ws:
                errors[f"lead_ids.{i}"] = [f"The selected lead_ids.{i} is invalid."]
                continue
            other = [
                c
                for c in lead.campaigns
                if c != campaign.id and self.data.campaigns[c].status == "active"
            ]
            if lead.status in ("bounced", "unsubscribed") or (other and not parallel):
                errors[f"lead_ids.{i}"] = [REFUSED]
            leads.append(lead)
        if errors:
            return Response(
                422,
                {
                    "message": REFUSED
                    if any(REFUSED in v for v in errors.values())
                    else "The given data was invalid.",
                    "errors": errors,
                },
            )
        for lead in leads:
            self.data.attach_sends[(campaign.id, lead.id)] += 1
            if campaign.id not in lead.campaigns:
                lead.campaigns[campaign.id] = "in_sequence"
                campaign.lead_ids.append(lead.id)
        return Response(
            200, {"data": {"success": True, "message": f"{len(leads)} leads attached."}}
        )

    def _campaigns(self, ws: int, q: dict[str, list[str]]) -> Response:
        items = [c.as_json() for c in self.data.campaigns.values() if c.workspace_id == ws]
        return Response(200, _paginate(items, q, "/api/campaigns", self.instance_url))

    def _stats(self, campaign: Campaign, payload: Any) -> Response:
        payload = payload or {}
        if campaign.status == "draft":
            return Response(400, {"message": "Stats are not available for draft campaigns."})
        for name in ("start_date", "end_date"):
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(payload.get(name) or "")):
                return _invalid(
                    {name: [f"The {name.replace('_', ' ')} field must be a valid date."]}
                )
        s = campaign.stats
        sent = s.get("emails_sent", 0)
        return Response(
            200,
            {
                "data": {
                    "emails_sent": str(sent),
                    "total_leads_contacted": s.get("contacted", 0),
                    "opened": s.get("opened", 0),
                    "opened_percentage": 0,
                    "unique_replies_per_contact": s.get("replied", 0),
                    "bounced": s.get("bounced", 0),
                    "unsubscribed": s.get("unsubscribed", 0),
                    "interested": s.get("interested", 0),
                    "sequence_step_stats": [],
                }
            },
        )

    def _replies(self, ws: int, q: dict[str, list[str]]) -> Response:
        folder = (q.get("folder") or ["all"])[0]
        items = [
            r
            for r in reversed(self.data.replies)
            if r["workspace_id"] == ws and folder in ("all", r["folder"])
        ]
        public = [{k: v for k, v in r.items() if k != "workspace_id"} for r in items]
        return Response(200, _paginate(public, q, "/api/replies", self.instance_url))

    def _webhooks(self, ws: int) -> Response:
        items = [w for w in self.data.webhooks.values() if w["workspace_id"] == ws]
        return Response(200, {"data": items})

    def _add_webhook(self, ws: int, payload: Any) -> Response:
        payload = payload or {}
        if not payload.get("url") or not isinstance(payload.get("events"), list):
            return _invalid({"url": ["The url field is required."]})
        wid = self.data.next_id()
        hook = {
            "id": wid,
            "workspace_id": ws,
            "name": payload.get("name") or "webhook",
            "url": payload["url"],
            "events": list(payload["events"]),
        }
        self.data.webhooks[wid] = hook
        return Response(201, {"data": hook})


def _invalid(errors: dict[str, list[str]]) -> Response:
    first = next(iter(errors.values()))[0]
    more = len(errors) - 1
    message = first if not more else f"{first} (and {more} more error{'s' if more > 1 else ''})"
    return Response(422, {"message": message, "errors": errors})


def _paginate(
    items: list[dict[str, Any]], q: dict[str, list[str]], path: str, base: str
) -> dict[str, Any]:
    total = len(items)
    last = max(1, -(-total // PER_PAGE))
    try:
        page = max(1, int((q.get("page") or ["1"])[0]))
    except ValueError:
        page = 1
    start = (page - 1) * PER_PAGE
    url = f"{base}{path}?page="
    return {
        "data": items[start : start + PER_PAGE],
        "links": {
            "first": f"{url}1",
            "last": f"{url}{last}",
            "prev": f"{url}{page - 1}" if page > 1 else None,
            "next": f"{url}{page + 1}" if page < last else None,
        },
        "meta": {
            "current_page": page,
            "from": start + 1 if start < total else None,
            "last_page": last,
            "path": f"{base}{path}",
            "per_page": PER_PAGE,
            "to": min(start + PER_PAGE, total) if start < total else None,
            "total": total,
        },
    }
