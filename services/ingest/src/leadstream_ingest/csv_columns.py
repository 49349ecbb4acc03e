"""CSV header → contact fields: common aliases, plus an explicit mapping from the client.

Headers are compared normalized (lower case, letters and digits only), so ``E-mail``,
``Email Address`` and ``email_address`` all mean ``email``. Columns that map to no field are
kept as ``custom_fields`` under their header text. An explicit mapping
(``{"<header>": "<field>" | "custom:<name>" | null}``) wins over the aliases; null drops the
column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from leadstream_ingest.errors import InvalidInput

FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "company",
    "website",
    "title",
    "city",
    "state",
    "postal_code",
    "country",
    "tags",
)
"""Targets a column can map to (``full_name`` is split into first and last name)."""

_ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "email", "emailaddress", "mail", "emailaddr", "workemail", "businessemail",
        "contactemail", "primaryemail", "emails",
    ),
    "first_name": ("firstname", "first", "givenname", "forename", "fname", "christianname"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "full_name": ("name", "fullname", "contactname", "contact", "leadname"),
    "phone": (
        "phone", "phonenumber", "telephone", "tel", "telephonenumber", "mobile", "mobilephone",
        "mobilenumber", "cell", "cellphone", "phoneno", "directphone", "workphone",
    ),
    "company": (
        "company", "companyname", "organization", "organisation", "org", "organizationname",
        "organisationname", "business", "businessname", "employer", "account", "accountname",
    ),
    "website": (
        "website", "web", "url", "site", "companywebsite", "websiteurl", "domain",
        "companydomain", "homepage",
    ),
    "title": ("title", "jobtitle", "position", "role", "designation"),
    "city": ("city", "town", "locality"),
    "state": ("state", "province", "region", "county", "stateprovince", "stateregion"),
    "postal_code": ("postalcode", "postcode", "zip", "zipcode", "postal", "zippostalcode"),
    "country": ("country", "countrycode", "nation", "countryname"),
    "tags": ("tags", "tag", "labels", "label"),
}  # fmt: skip
_BY_ALIAS = {alias: field for field, aliases in _ALIASES.items() for alias in aliases}
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
CUSTOM_PREFIX = "custom:"


def normalize_header(header: str) -> str:
    return _NON_ALNUM.sub("", header.strip().lower())


@dataclass(frozen=True, slots=True)
class Column:
    """What one CSV column becomes: a contact field, a custom field, or nothing."""

    index: int
    header: str
    field: str | None  # a name from FIELDS, or None
    custom: str | None  # custom_fields key, or None

    @property
    def target(self) -> str | None:
        if self.field is not None:
            return self.field
        return CUSTOM_PREFIX + self.custom if self.custom is not None else None


def parse_mapping(raw: str | None) -> dict[str, str | None]:
    """The ``mapping`` parameter: a JSON object of header → target (or null)."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput(
            'mapping must be a JSON object such as {"E-mail": "email"}', code="bad_mapping"
        ) from None
    if not isinstance(value, dict) or len(value) > 500:
        raise InvalidInput("mapping must be a JSON object of header → field", code="bad_mapping")
    out: dict[str, str | None] = {}
    for header, target in value.items():
        if target is not None and not isinstance(target, str):
            raise InvalidInput(
                f"mapping for {header[:60]!r} must be a field name or null", code="bad_mapping"
            )
        if isinstance(target, str) and target not in FIELDS:
            name = target.removeprefix(CUSTOM_PREFIX)
            if not target.startswith(CUSTOM_PREFIX) or not name or len(name) > 128:
                raise InvalidInput(
                    f"mapping for {header[:60]!r}: unknown field {target[:60]!r}; fields are "
                    f"{', '.join(FIELDS)} or custom:<name>",
                    code="bad_mapping",
                )
        out[header.strip()] = target
    return out


def resolve_columns(
    headers: Sequence[str], mapping: Mapping[str, str | None], *, max_columns: int
) -> list[Column]:
    """The columns of a header row; :class:`InvalidInput` when it cannot be used."""
    if len(headers) > max_columns:
        raise InvalidInput(
            f"{len(headers)} columns; at most {max_columns} are accepted", code="too_many_columns"
        )
    names = [h.strip() for h in headers]
    missing = [h for h in mapping if h not in names]
    if missing:
        raise InvalidInput(
            f"mapping names columns that are not in the header: {', '.join(missing[:10])}",
            code="bad_mapping",
        )
    columns: list[Column] = []
    owner: dict[str, str] = {}
    seen_custom: set[str] = set()
    for i, name in enumerate(names):
        header = name or f"column_{i + 1}"
        target = mapping[name] if name in mapping else _BY_ALIAS.get(normalize_header(name))
        if name in mapping and target is None:
            columns.append(Column(i, header, None, None))
            continue
        if target is not None and target in FIELDS:
            if target in owner:
                raise InvalidInput(
                    f"columns {owner[target]!r} and {header!r} both map to {target}; "
                    "pass a mapping to choose",
                    code="ambiguous_columns",
                )
            owner[target] = header
            columns.append(Column(i, header, target, None))
            continue
        custom = target.removeprefix(CUSTOM_PREFIX) if target else header
        while custom in seen_custom:
            custom = f"{custom}_{i + 1}"
        seen_custom.add(custom)
        columns.append(Column(i, header, None, custom))
    if "email" not in owner:
        shown = ", ".join(repr(n) for n in names[:20])
        raise InvalidInput(
            f"no email column among the headers ({shown}); name one with the mapping "
            'parameter, e.g. {"Your column": "email"}',
            code="no_email_column",
        )
    if "full_name" in owner and "first_name" in owner and "last_name" in owner:
        raise InvalidInput(
            f"columns {owner['full_name']!r}, {owner['first_name']!r} and "
            f"{owner['last_name']!r}: map the full name to null or to custom:<name>",
            code="ambiguous_columns",
        )
    return columns
