"""The monitor sink: rows go to the shard their request id hashes to, once the number of shards is known."""

import pyarrow as pa

from raymlops.monitor.shards import shard_of
from raymlops.serve.monitor_sink import MonitorSink


class FakeShard:
    def __init__(self, ready: bool = True) -> None:
        self.batches: list = []
        self.is_ready = ready

    def send(self, batch) -> None:
        self.batches.append(batch)

    def ready(self) -> bool:
        return self.is_ready

    def failed_rows(self) -> int:
        return 3

    def waiting_rows(self) -> int:
        return 2

    resent_rows = 1


def sink_with(shards: int, fakes: list) -> MonitorSink:
    sink = MonitorSink("m")
    sink.shards, sink.sinks = shards, fakes
    return sink


def test_each_row_goes_to_the_shard_of_its_request_id():
    ids = [f"r{i}" for i in range(40) for _ in range(2)]  # two rows per request
    fakes = [FakeShard(), FakeShard()]
    sink_with(2, fakes).send(pa.record_batch({"request_id": ids, "n": list(range(80))}))
    got = {k: [r for b in fake.batches for r in b.column("request_id").to_pylist()] for k, fake in enumerate(fakes)}
    assert sorted(got[0] + got[1]) == sorted(ids) and got[0] and got[1]
    for shard, rows in got.items():
        assert set(shard_of(rows, 2).tolist()) == {shard}


def test_until_the_number_of_shards_is_known_every_row_goes_to_shard_0():
    first = FakeShard()
    sink = sink_with(None, [first])
    sink._asked = object()  # a question in flight: the answer has not come
    sink._learn_shards = lambda: None
    sink.send(pa.record_batch({"request_id": ["a", "b", "c"], "n": [1, 2, 3]}))
    assert first.batches[0].num_rows == 3


def test_it_is_ready_only_when_every_shard_is_and_sums_what_they_count():
    sink = sink_with(2, [FakeShard(), FakeShard(ready=False)])
    assert not sink.ready()
    assert sink.failed_rows() == 6 and sink.waiting_rows() == 4 and sink.resent_rows == 2
    assert sink_with(2, [FakeShard(), FakeShard()]).ready()
