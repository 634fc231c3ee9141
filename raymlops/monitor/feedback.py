"""Feedback labels joined to logged predictions, per-version accuracy, and the labelled rows
retraining learns from. Pure.

The monitor remembers the last ``capacity`` answered requests (version, prediction, features);
a label for a request id it does not remember is refused, never guessed.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from raymlops.serve.records import FEATURE_PREFIX

LIVE_ARMS = ("stable", "canary", "pinned")


@dataclass
class FeedbackJoin:
    """Recent answers by request id, and the labels that arrived for them."""

    capacity: int = 100_000
    window: int = 10_000
    answers: OrderedDict = field(default_factory=OrderedDict)
    outcomes: dict[int, deque] = field(default_factory=dict)
    labelled_rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, batch: dict[str, list]) -> None:
        """Remember the answered rows of a record batch (shadow answers are never returned, so never labelled)."""
        features = [name for name in batch if name.startswith(FEATURE_PREFIX)]
        for i, request_id in enumerate(batch.get("request_id", [])):
            if batch["arm"][i] not in LIVE_ARMS or batch["prediction"][i] is None or (batch["status"][i] or 0) >= 400:
                continue
            row = {name[len(FEATURE_PREFIX):]: batch[name][i] for name in features}
            # one request may hold several rows: keep them in order under its id
            entry = self.answers.setdefault(request_id, (batch["version"][i], [], []))
            entry[1].append(batch["prediction"][i])
            entry[2].append(row)
            self.answers.move_to_end(request_id)
        while len(self.answers) > self.capacity:
            self.answers.popitem(last=False)

    def unknown(self, request_ids: list[str]) -> list[str]:
        """The ids among ``request_ids`` this join does not remember."""
        return [rid for rid in request_ids if rid not in self.answers]

    def label(self, items: list[tuple[str, list[str]]], now: float, label_column: str) -> int:
        """Join labels (one per row of each request) to their answers; returns the rows labelled.

        Raises:
            KeyError: an unknown request id (check with :meth:`unknown` first).
            ValueError: a request got a different number of labels than it had rows.
        """
        for request_id, labels in items:
            if len(labels) != len(self.answers[request_id][1]):
                raise ValueError(f"request {request_id} had {len(self.answers[request_id][1])} rows, "
                                 f"got {len(labels)} labels")
        rows = 0
        for request_id, labels in items:
            version, predictions, features = self.answers[request_id]
            outcomes = self.outcomes.setdefault(int(version), deque(maxlen=self.window))
            for label, prediction, row in zip(labels, predictions, features):
                outcomes.append((now, label == prediction))
                self.labelled_rows.append({**row, label_column: label, "__version__": int(version),
                                           "__request_id__": request_id, "__time__": now})
                rows += 1
        return rows

    def accuracy(self, since: float | None = None) -> dict[str, dict[str, Any]]:
        """Per version: labelled rows and accuracy since a UNIX time."""
        result = {}
        for version, outcomes in self.outcomes.items():
            kept = [correct for t, correct in outcomes if since is None or t >= since]
            result[str(version)] = {"labelled": len(kept), "accuracy": sum(kept) / len(kept) if kept else None}
        return result

    def drain_labelled(self) -> list[dict[str, Any]]:
        """Labelled rows not yet written to the log."""
        rows, self.labelled_rows = self.labelled_rows, []
        return rows
