"""A realistic sample contact list, and the DNS answers for its domains.

The list has what real agency lists have: company and free-provider addresses, duplicates that
differ only in case or spacing, invalid and missing emails, role accounts, disposable domains,
domains without mail (NXDOMAIN), domains with only an A record, and a common typo (gmial.com).
Generation is deterministic for a given seed, so a run can be compared with the last one.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from leadstream.devtools.dns_server import NXDOMAIN, AOnly, Behaviour, Mx

FIRST = [
    "Olivia",
    "Noah",
    "Amelia",
    "Jack",
    "Isla",
    "Harry",
    "Ava",
    "Oscar",
    "Mia",
    "George",
    "Sofia",
    "Leo",
    "Grace",
    "Arthur",
    "Lily",
    "Muhammad",
    "Freya",
    "Theo",
    "Emily",
    "Jacob",
]
LAST = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
]
TITLES = ["Broker", "Office Manager", "Director", "Head of Sales", "Owner", "Account Executive"]
CITIES = [
    ("Manchester", "England"),
    ("Leeds", "England"),
    ("Glasgow", "Scotland"),
    ("Cardiff", "Wales"),
    ("Bristol", "England"),
    ("Belfast", "Northern Ireland"),
]
FREE = ["gmail.com", "yahoo.co.uk", "outlook.com", "hotmail.co.uk"]
DISPOSABLE = ["mailinator.com", "guerrillamail.com", "10minutemail.com"]
ROLES = ["info", "sales", "admin", "office", "support"]


def company_domains(count: int = 300) -> list[str]:
    return [
        f"{w}-{k}.co.uk"
        for k, w in enumerate(
            ["acme", "brightline", "northgate", "harbour", "kestrel", "meridian"] * (count // 6 + 1)
        )
    ][:count]


def dns_zone() -> dict[str, Behaviour]:
    """What the sample's domains answer: most have MX, a few have no mail at all."""
    zone: dict[str, Behaviour] = {}
    for i, domain in enumerate(company_domains()):
        if i % 50 == 7:
            zone[domain] = NXDOMAIN
        elif i % 50 == 13:
            zone[domain] = AOnly()
        else:
            zone[domain] = Mx(f"mx1.{domain}", f"mx2.{domain}")
    for domain in [*FREE, *DISPOSABLE, "gmial.com"]:
        zone[domain] = Mx(f"mx.{domain}")
    return zone


@dataclass
class SampleStats:
    rows: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


def write_sample(path: Path, rows: int = 10_000, seed: int | None = None) -> SampleStats:
    """Write the sample CSV (with a header row) and say what it contains.

    The same ``seed`` writes the same file; without one each run gets new people, so a second
    run is not all duplicates of the first (the filter de-duplicates across all time).
    """
    rng = random.Random(seed)
    base = rng.randrange(10_000_000)
    domains = company_domains()
    stats = SampleStats()
    seen: list[str] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "E-mail",
                "First Name",
                "Last Name",
                "Phone",
                "company_name",
                "Website",
                "Job Title",
                "City",
                "State",
                "Country",
                "tags",
            ]
        )
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            domain = domains[i % len(domains)]
            roll = rng.random()
            if roll < 0.06 and seen:
                kind, email = "duplicate", _vary(rng.choice(seen), rng)
            elif roll < 0.09:
                kind, email = (
                    "invalid",
                    rng.choice([f"{first}.{last}@", f"{first} {last}", f"{first}@@{domain}", ""]),
                )
            elif roll < 0.12:
                kind, email = "role", f"{rng.choice(ROLES)}@{domain}"
            elif roll < 0.14:
                kind, email = "disposable", f"{first}{base + i}@{rng.choice(DISPOSABLE)}".lower()
            elif roll < 0.15:
                kind, email = "typo", f"{first}.{last}{base + i}@gmial.com".lower()
            elif roll < 0.30:
                kind, email = "free", f"{first}.{last}{base + i}@{rng.choice(FREE)}".lower()
            else:
                kind, email = "company", f"{first}.{last}{base + i}@{domain}".lower()
            if kind not in ("duplicate", "invalid"):
                seen.append(email)
            city, state = rng.choice(CITIES)
            phone = f"07{rng.randrange(100_000_000, 999_999_999)}" if rng.random() < 0.7 else ""
            out.writerow(
                [
                    email,
                    first,
                    last,
                    phone,
                    f"{domain.split('.')[0].title()} Ltd",
                    f"https://www.{domain}",
                    rng.choice(TITLES),
                    city,
                    state,
                    "GB",
                    rng.choice(["insurance", "insurance;q4", "renewals"]),
                ]
            )
            stats.rows += 1
            stats.kinds[kind] += 1
    return stats


def _vary(email: str, rng: random.Random) -> str:
    """The same address as a person would type it again."""
    local, _, domain = email.partition("@")
    return rng.choice([f"{local.title()}@{domain.upper()}", f"  {email} ", f"{local}@{domain}."])
