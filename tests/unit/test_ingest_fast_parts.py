"""Parts of the registrations fast path that need no servers: the one-message ack and the
hand-started body read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from leadstream_ingest.errors import Unavailable
from leadstream_ingest.fast_registrations import _Resumed
from leadstream_ingest.producer import OneAck


def test_one_ack_answers_as_acks_do() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        delivered, refused, silent = OneAck(loop), OneAck(loop), OneAck(loop)
        delivered(None, None)  # type: ignore[arg-type]
        refused("broker gone", None)  # type: ignore[arg-type]
        await delivered.wait(5)
        codes = []
        for ack, timeout in ((refused, 5.0), (silent, 0.1)):
            with pytest.raises(Unavailable) as caught:
                await ack.wait(timeout)
            codes.append(caught.value.code)
        return codes

    assert asyncio.run(main()) == ["broker_unavailable", "broker_timeout"]


def test_a_started_coroutine_is_awaited_on_as_await_would() -> None:
    async def receive(delay: float) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": b"x"}

    async def read(delay: float, budget: float) -> dict[str, Any]:
        pending = receive(delay)
        waiting_on = pending.send(None)  # suspends: the sleep
        async with asyncio.timeout(budget):
            return await _Resumed(pending, waiting_on)  # type: ignore[no-any-return]

    assert asyncio.run(read(0.01, 5))["body"] == b"x"
    with pytest.raises(TimeoutError):
        asyncio.run(read(5, 0.05))
