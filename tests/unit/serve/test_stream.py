import asyncio

import pytest

from raymlops.errors import ConfigError
from raymlops.serve.buffer import RecordBuffer
from raymlops.serve.stream import NullSink, RecordStream, build_sink, rows_per_flush

META = {"request_id": "r", "time": 0.0, "model": "m", "version": 1, "arm": "stable", "latency_ms": 1.0, "status": 200}


def add_rows(stream, count):
    """``count`` one-row requests, ids 0…count-1."""
    for i in range(count):
        stream.add({**META, "request_id": str(i)}, {"x": [float(i)]}, ["a"], [0.9])


class ListSink:
    def __init__(self, fail=False):
        self.batches, self.fail = [], fail

    def send(self, batch):
        if self.fail:
            raise RuntimeError("sink down")
        self.batches.append(batch)

    def failed_rows(self):
        return 0


def test_the_flush_task_delivers_every_row_in_batches():
    sink = ListSink()

    async def scenario():
        stream = RecordStream(sink, RecordBuffer(flush_rows=10, flush_ms=20))
        for i in range(25):
            stream.add({**META, "request_id": str(i)}, {"x": [float(i)]}, ["a"], [0.9])
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)
        await stream.close()
        return stream

    stream = asyncio.run(scenario())
    ids = [i for batch in sink.batches for i in batch.column("request_id").to_pylist()]
    assert ids == [str(i) for i in range(25)] and stream.sent_rows == 25 and stream.lost_rows == 0


def test_a_full_buffer_goes_within_50_ms_however_long_flush_ms_is():
    sink = ListSink()

    async def scenario():
        stream = RecordStream(sink, RecordBuffer(flush_rows=5, flush_ms=60_000))
        add_rows(stream, 5)
        await asyncio.sleep(0.15)
        sent = stream.sent_rows
        await stream.close()
        return sent

    assert asyncio.run(scenario()) == 5 and len(sink.batches) == 1


def test_rows_per_flush_follows_the_first_look_after_rows_or_time():
    assert rows_per_flush(380, 1024, 1000) == 380  # slow traffic: one second's rows
    assert rows_per_flush(50_000 / 16, 1024, 1000) == 1094  # 156 rows per 50 ms look, 7 looks
    assert rows_per_flush(50_000 / 16, 64, 100) == 156  # the old default: every look


class SlowDeliverySink(ListSink):
    """Accepts at once, delivers later: ``delivered`` grows only when the delivery is awaited."""

    def __init__(self):
        super().__init__()
        self.delivered = 0

    async def settle(self, timeout_s):
        await asyncio.sleep(0.01)
        self.delivered = sum(b.num_rows for b in self.batches)


def test_settle_flushes_and_waits_until_the_sink_delivered_everything():
    sink = SlowDeliverySink()

    async def scenario():
        stream = RecordStream(sink, RecordBuffer(flush_rows=1000, flush_ms=60_000))
        add_rows(stream, 7)
        assert sink.delivered == 0
        await stream.settle()
        await stream.close()

    asyncio.run(scenario())
    assert sink.delivered == 7
    asyncio.run(RecordStream(ListSink(), RecordBuffer()).settle())  # a sink without settle is settled at once


def test_a_failing_sink_is_counted_not_raised():
    stream = RecordStream(ListSink(fail=True), RecordBuffer())
    stream.add(META, {"x": [1.0, 2.0]}, ["a", "b"])
    assert stream.flush() == 0 and stream.lost_rows == 2


def test_sinks_are_chosen_by_name_or_import_path():
    assert isinstance(build_sink("none"), NullSink)
    assert isinstance(build_sink("raymlops.serve.stream:NullSink"), NullSink)
    with pytest.raises(ConfigError, match="records.sink"):
        build_sink("kafka")
    with pytest.raises(ConfigError, match="records.options"):
        build_sink("none", {"bogus": 1})


class BusySink(ListSink):
    """Says it is not ready until told otherwise (an actor with its calls in flight)."""

    def __init__(self):
        super().__init__()
        self.busy = True

    def ready(self):
        return not self.busy


def test_rows_wait_in_the_buffer_while_the_sink_is_busy_and_go_out_in_batches_of_flush_rows():
    sink = BusySink()
    stream = RecordStream(sink, RecordBuffer(capacity=100, flush_rows=2))
    for i in range(5):
        stream.add({**META, "request_id": str(i)}, {"x": [float(i)]}, ["a"], [0.9])
        assert stream.flush() == 0
    assert sink.batches == [] and stream.buffer.size == 5 and stream.lost_rows == 0
    sink.busy = False
    assert [stream.flush() for _ in range(4)] == [2, 2, 1, 0]  # one bounded batch per look, oldest first
    assert [b.column("request_id").to_pylist() for b in sink.batches] == [["0", "1"], ["2", "3"], ["4"]]
    assert stream.sent_rows == 5 and stream.lost_rows == 0


def test_settle_sends_what_waited_even_when_the_sink_stays_busy():
    sink = BusySink()
    stream = RecordStream(sink, RecordBuffer(capacity=100, flush_rows=1))
    stream.add(META, {"x": [1.0, 2.0]}, ["a", "b"], [0.9, 0.8])
    asyncio.run(stream.settle())
    assert [b.num_rows for b in sink.batches] == [2] and stream.sent_rows == 2


def test_the_metrics_hear_of_sent_and_lost_rows_at_the_flush_looks_not_at_each_request():
    """A request only appends; asking the sink about its calls in flight (a ``ray.wait`` for an
    actor sink) happens once per look of the flush task, with the metrics told what changed."""

    class CountingSink(ListSink):
        asked = 0

        def failed_rows(self):
            self.asked += 1
            return 3 if self.fail else 0

    heard: list[tuple[int, int]] = []
    sink = CountingSink()
    stream = RecordStream(sink, RecordBuffer(flush_rows=4, flush_ms=60_000), lambda sent, lost: heard.append((sent, lost)))
    add_rows(stream, 6)
    assert sink.asked == 0 and heard == []  # requests never ask the sink
    stream.flush()
    stream.report()
    stream.report()  # nothing changed: nothing told
    assert heard == [(4, 0)]
    stream.flush()
    sink.fail = True  # the sink gave rows up since
    stream.report()
    assert heard == [(4, 0), (2, 3)]

    async def looks():
        flowing = RecordStream(ListSink(), RecordBuffer(flush_rows=5, flush_ms=20), lambda s, lost: heard.append((s, lost)))
        add_rows(flowing, 5)
        await asyncio.sleep(0.15)
        await flowing.close()

    heard.clear()
    asyncio.run(looks())
    assert heard == [(5, 0)]  # the flush task told it after the look that sent them
