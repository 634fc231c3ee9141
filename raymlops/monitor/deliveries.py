"""Exactly-once record delivery from replicas to a monitor that may be killed at any time. Pure.

Each replica's sink numbers its batches (1, 2, …) under its own sender id and keeps every batch
it sent until the monitor says it is durable — in a snapshot the monitor wrote. The monitor
takes a batch only in sequence: a number it has seen is a duplicate (a resend after a lost
reply) and is skipped; a number past the next one means batches went missing (the monitor was
restarted from an older snapshot) and it asks for them again from the first one missing. A
replica that had to give batches up says so with ``floor``, the lowest number it can still
send: the monitor does not wait for the ones below it. So after a monitor restart every row
comes back once, and rows sent = rows counted + rows the replicas report lost, exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Deliveries:
    """Per sender: the last batch number taken, and the last one in a written snapshot."""

    max_senders: int = 1000
    seen: OrderedDict = field(default_factory=OrderedDict)
    durable: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0

    def admit(self, sender: str, seq: int, floor: int | None = None) -> tuple[bool, int | None]:
        """Whether to take batch ``seq`` of ``sender`` now, and the number to resend from when a
        gap stands before it (``floor``: the lowest number the sender still has)."""
        seen = self.seen.get(sender, 0)
        if seq <= seen:
            self.duplicates += 1
            return False, None
        if floor is not None and floor > seen + 1:  # the sender gave those up: do not wait for them
            seen = floor - 1
            self._set(sender, seen)
        if seq > seen + 1:
            return False, seen + 1
        self._set(sender, seq)
        return True, None

    def _set(self, sender: str, seq: int) -> None:
        self.seen[sender] = seq
        self.seen.move_to_end(sender)
        while len(self.seen) > self.max_senders:
            gone, _ = self.seen.popitem(last=False)
            self.durable.pop(gone, None)

    def reply(self, sender: str, resend_from: int | None = None) -> dict[str, Any]:
        """What the sender learns: the last number that is durable, and where to resend from."""
        return {"durable": self.durable.get(sender, 0), "resend_from": resend_from}

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps (captured together with the rows it covers)."""
        return {"seen": dict(self.seen)}

    def committed(self, state: dict[str, Any]) -> None:
        """A snapshot holding ``state`` was written: those batches are durable now."""
        self.durable.update(state.get("seen", {}))

    def restore(self, state: dict[str, Any]) -> None:
        """After a restart: what the snapshot had taken is what is durable."""
        self.seen = OrderedDict(state.get("seen", {}))
        self.durable = dict(self.seen)
