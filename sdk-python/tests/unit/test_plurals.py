"""Counts in the SDK's log lines read right for one and for several."""

import asyncio
import logging

from lymph.link import Link


class FakeContainer:
    log_sink = None


def abandoned(caplog, count):
    async def scenario():
        link = Link(FakeContainer(), "/nowhere/lymphd.sock")
        tasks = [asyncio.ensure_future(asyncio.sleep(10)) for _ in range(count)]
        link.in_flight.update(tasks)
        await link.stop(grace=0.01)
        await asyncio.gather(*tasks, return_exceptions=True)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lymph.link"):
        asyncio.run(scenario())
    return [r.getMessage() for r in caplog.records if r.name == "lymph.link"]


def test_one_abandoned_handler(caplog):
    messages = abandoned(caplog, 1)
    assert "1 handler did not finish within 0.01s; abandoning it" in messages, messages


def test_several_abandoned_handlers(caplog):
    messages = abandoned(caplog, 3)
    assert "3 handlers did not finish within 0.01s; abandoning them" in messages, messages
