"""Parts of the registrations fast path that need no servers: the one-message ack and the
hand-started body read."""

from __future__ import annotations

import asyncio
import threading
import time
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


def test_one_acks_reported_from_another_thread_all_resolve_with_their_own_report() -> None:
    async def main() -> list[str | None]:
        loop = asyncio.get_running_loop()
        acks = [OneAck(loop) for _ in range(500)]

        def deliver() -> None:  # as the poll thread does, in bursts
            for i, ack in enumerate(acks):
                ack(None if i % 7 else "refused", None)  # type: ignore[arg-type]
                if i % 50 == 0:
                    time.sleep(0.001)

        worker = threading.Thread(target=deliver)
        worker.start()
        outcomes: list[str | None] = []
        for ack in acks:
            try:
                await ack.wait(5)
                outcomes.append(None)
            except Unavailable as exc:
                outcomes.append(exc.code)
        worker.join()
        return outcomes

    outcomes = asyncio.run(main())
    assert outcomes == [None if i % 7 else "broker_unavailable" for i in range(500)]


def test_a_burst_of_reports_wakes_the_loop_once() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        wakeups = 0
        plain = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return plain(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        try:
            first = [OneAck(loop) for _ in range(10)]
            for ack in first:  # one burst: nothing runs on the loop in between
                ack(None, None)  # type: ignore[arg-type]
            for ack in first:
                await ack.wait(5)
            after_first = wakeups
            second = OneAck(loop)
            second(None, None)  # type: ignore[arg-type]
            await second.wait(5)
        finally:
            del loop.call_soon_threadsafe
        return after_first, wakeups

    assert asyncio.run(main()) == (1, 2)


def test_a_report_for_a_closed_loop_is_dropped_without_error() -> None:
    loop = asyncio.new_event_loop()
    ack = OneAck(loop)
    loop.close()
    ack(None, None)  # type: ignore[arg-type]  # as the poll thread would, late
    ack(None, None)  # type: ignore[arg-type]
    inbox = ack._inbox
    assert not inbox._queue  # nothing kept
    assert not inbox._scheduled  # no wake-up pending
