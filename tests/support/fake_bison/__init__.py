"""A contract-faithful fake of Email Bison (``shared/reference/email-bison-api.md``).

- :class:`FakeBison` holds workspaces and ``<n>|<secret>`` keys (403 across workspaces),
  leads (unique email per workspace), campaigns, custom variables, replies and webhook
  subscriptions; answers 15-per-page Laravel pagination, the 500-lead limit and 422s shaped
  like Laravel's (``leads.3.email``); enforces a request rate per key (429 + Retry-After);
  takes injected faults (:class:`Fault`: 5xx, 429 bursts, slow answers, failures after the
  change was applied); counts what tests assert on (lead creations, attach sends, the request
  log with times for rate measurements); and sends webhooks (:mod:`.events`).
- :class:`FakeBisonServer` serves it on a loopback port in a thread;
  ``python -m tests.support.fake_bison`` serves it in its own process.
"""

from tests.support.fake_bison.events import WebhookSender
from tests.support.fake_bison.fake import FakeBison, Response, Seen
from tests.support.fake_bison.faults import Fault
from tests.support.fake_bison.server import FakeBisonServer
from tests.support.fake_bison.transport import fake_transport

__all__ = [
    "FakeBison",
    "FakeBisonServer",
    "Fault",
    "Response",
    "Seen",
    "WebhookSender",
    "fake_transport",
]
