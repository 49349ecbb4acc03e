"""The fake as an httpx transport: unit tests talk to it without a socket."""

from __future__ import annotations

import json

import httpx

from tests.support.fake_bison.fake import FakeBison


def fake_transport(fake: FakeBison) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        resp = fake.handle(
            request.method,
            request.url.path,
            request.url.query.decode(),
            request.content,
            request.headers.get("authorization"),
        )
        content = b"" if resp.body is None else json.dumps(resp.body).encode()
        headers = {"content-type": "application/json", **resp.headers}
        return httpx.Response(resp.status, content=content, headers=headers)

    return httpx.MockTransport(handle)
