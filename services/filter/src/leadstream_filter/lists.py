"""Default lists: role-account local parts and free mailbox providers (both configurable)."""

from __future__ import annotations

ROLE_ACCOUNTS: frozenset[str] = frozenset(
    {
        # RFC 2142 mailbox names
        "info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
        "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp",
        # common shared inboxes
        "admin", "administrator", "accounts", "accounting", "billing", "careers", "compliance",
        "contact", "contactus", "customercare", "customerservice", "customer.service",
        "enquiries", "enquiry", "feedback", "finance", "hello", "help", "helpdesk", "hr",
        "inquiries", "inquiry", "invoices", "it", "jobs", "legal", "mail", "media", "newsletter",
        "no-reply", "no_reply", "noreply", "do-not-reply", "donotreply", "office", "orders",
        "press", "privacy", "recruitment", "reception", "service", "services", "shop", "team",
        "root", "sysadmin", "admissions", "bookings", "reservations", "purchasing",
    }
)  # fmt: skip

FREE_PROVIDERS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de",
        "yahoo.es", "yahoo.it", "yahoo.ca", "yahoo.com.au", "yahoo.co.in", "ymail.com",
        "rocketmail.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de",
        "hotmail.it", "hotmail.es", "outlook.com", "outlook.fr", "outlook.de", "live.com",
        "live.co.uk", "live.fr", "msn.com", "windowslive.com", "aol.com", "aim.com",
        "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "pm.me", "gmx.com",
        "gmx.net", "gmx.de", "gmx.co.uk", "web.de", "mail.com", "email.com", "yandex.com",
        "yandex.ru", "mail.ru", "zoho.com", "zohomail.com", "tutanota.com", "tuta.io",
        "fastmail.com", "hushmail.com", "inbox.com", "qq.com", "163.com", "126.com",
        "sina.com", "naver.com", "libero.it", "virgilio.it", "orange.fr", "wanadoo.fr",
        "free.fr", "laposte.net", "sfr.fr", "t-online.de", "btinternet.com", "sky.com",
        "talktalk.net", "virginmedia.com", "ntlworld.com", "comcast.net", "verizon.net",
        "att.net", "sbcglobal.net", "bellsouth.net", "cox.net", "charter.net", "earthlink.net",
        "rediffmail.com", "bigpond.com", "optusnet.com.au", "shaw.ca", "rogers.com",
        "sympatico.ca", "seznam.cz", "wp.pl", "o2.pl", "interia.pl", "onet.pl",
    }
)  # fmt: skip


def role_key(local: str) -> str:
    """The part of a local part compared with the role list: lower-cased, ``+tag`` dropped."""
    return local.lower().split("+", 1)[0]


__all__ = ["FREE_PROVIDERS", "ROLE_ACCOUNTS", "role_key"]
