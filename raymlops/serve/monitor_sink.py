"""The record sink of ``records.sink: monitor``: the model's drift monitor, one shard or several.

A sharded monitor (``shards`` in configs/monitor.yaml) takes each row on the shard its request
id hashes to (:func:`raymlops.monitor.shards.split_batch`). The sink asks shard 0 how many
shards there are once it is found; until the answer comes, rows go to shard 0, which takes
any row. Each shard gets its own :class:`~raymlops.serve.stream.ActorSink` (numbered batches,
resent after a restart), so one shard restarting holds back only its own rows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from raymlops.actors import monitor_name
from raymlops.monitor.shards import split_batch
from raymlops.records import RecordBatch
from raymlops.serve.stream import ActorSink

log = logging.getLogger(__name__)


class MonitorSink:
    """Sends a replica's records to the model's monitor shards.

    Args:
        model: the served model (its monitor is ``raymlops-monitor-{model}``).
        namespace: the monitor's Ray namespace.
        options: :class:`~raymlops.serve.stream.ActorSink` settings, for each shard.
    """

    def __init__(self, model: str, namespace: str = "raymlops", **options: Any) -> None:
        self.model, self.namespace, self.options = model, namespace, {"sequenced": True, **options}
        self.sinks = [ActorSink(monitor_name(model), namespace, **self.options)]
        self.shards: int | None = None
        self._asked: Any = None

    def _learn_shards(self) -> None:
        """Ask shard 0 for the number of shards once (without waiting for the answer)."""
        import ray

        if self.shards is not None:
            return
        if self._asked is None:
            leader = self.sinks[0]._target()
            if leader is not None:
                self._asked = leader.shards.remote()
            return
        if not ray.wait([self._asked], timeout=0)[0]:
            return
        try:
            self.shards = int(ray.get(self._asked, timeout=0))
        except Exception as exc:  # noqa: BLE001 - asked again at the next send
            self._asked = None
            log.warning("record sink: the number of monitor shards of %s is unknown yet: %s", self.model, exc)
            return
        self.sinks += [ActorSink(monitor_name(self.model, shard), self.namespace, **self.options)
                       for shard in range(1, self.shards)]

    def send(self, batch: RecordBatch) -> None:
        """Send each row to its shard (never blocks)."""
        self._learn_shards()
        for shard, part in split_batch(batch, self.shards or 1):
            self.sinks[shard].send(part)

    def ready(self) -> bool:
        """Whether every shard takes another batch now (see :meth:`ActorSink.ready`)."""
        self._learn_shards()
        return all([sink.ready() for sink in self.sinks])

    def failed_rows(self) -> int:
        """Rows given up by any shard's sink."""
        return sum(sink.failed_rows() for sink in self.sinks)

    def waiting_rows(self) -> int:
        """Rows sent or waiting to be sent again, not yet delivered, to any shard."""
        return sum(sink.waiting_rows() for sink in self.sinks)

    @property
    def resent_rows(self) -> int:
        """Rows sent again after a shard came back."""
        return sum(sink.resent_rows for sink in self.sinks)

    async def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until every shard has processed what it was handed (or given it up)."""
        await asyncio.gather(*(sink.settle(timeout_s) for sink in self.sinks))


def records_sink(model: str, name: str, options: dict[str, Any]) -> Any:
    """The sink ``records.sink`` names: ``monitor`` (the model's monitor shards), else
    :func:`~raymlops.serve.stream.build_sink`."""
    from raymlops.actors import NAMESPACE
    from raymlops.serve.stream import build_sink

    return MonitorSink(model, NAMESPACE, **options) if name == "monitor" else build_sink(name, options)
