"""Events kept while the registry's database is away are written, in order, once it is back."""

import asyncio
from collections import Counter

from raymlops.monitor.outbox import EventOutbox


class FlakyRegistry:
    def __init__(self):
        self.down, self.written = True, []

    def add_event(self, model, kind, version, payload):
        if self.down:
            raise ConnectionError("database is away")
        self.written.append((kind, version))
        return kind


def test_events_wait_in_order_while_the_database_is_away():
    registry, counters = FlakyRegistry(), Counter()
    outbox = EventOutbox(registry, "m", counters, capacity=2)

    async def scenario():
        assert await outbox.add("drift_detected", 1, {}) is None
        assert await outbox.add("drift_cleared", 1, {}) is None  # behind the first, even if it could go
        assert await outbox.drain() == 0 and counters["events_pending"] == 2
        await outbox.add("drift_detected", 2, {})  # over capacity: the oldest is dropped, counted
        registry.down = False
        assert await outbox.drain() == 2
        assert await outbox.add("drift_cleared", 2, {}) == "drift_cleared"  # written at once again

    asyncio.run(scenario())
    assert registry.written == [("drift_cleared", 1), ("drift_detected", 2), ("drift_cleared", 2)]
    assert counters["events_dropped"] == 1 and counters["events_pending"] == 0 and outbox.last_error is None
