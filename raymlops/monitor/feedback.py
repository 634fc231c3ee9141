"""Feedback labels joined to logged predictions, per-version accuracy, and the labelled rows
retraining learns from. Pure.

The monitor remembers the answered requests of its last ``capacity`` rows: for each request id
its version, arm, predictions and a zero-copy slice of the record batch that carried its rows.
A label for a request id it does not remember is refused, never guessed; a request is labelled
once (a second label for it is refused, it does not count twice); feature values are read out of
the slice only when a label arrives. Labels of answers pinned to a version are kept for
retraining but do not count in the accuracy rollouts judge: only the traffic split's arms do.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from raymlops.errors import ConflictError, InvalidRequestError, NotFoundError
from raymlops.records import ANSWERING_ARMS, FEATURE_PREFIX, ROUTED_ARMS, as_view


@dataclass
class Answer:
    """One answered request: its version, arm, predictions and rows, and whether it was labelled."""

    version: int
    predictions: list[Any]
    rows: list[pa.RecordBatch]
    arm: str = "stable"
    labelled: bool = False

    def features(self) -> list[dict[str, Any]]:
        """The request's feature values, row by row (read only when labelled)."""
        out = []
        for rows in self.rows:
            names = [n for n in rows.schema.names if n.startswith(FEATURE_PREFIX)]
            for row in rows.select(names).to_pylist():
                out.append({name[len(FEATURE_PREFIX):]: value for name, value in row.items()})
        return out


def outcome_of(label: Any, prediction: Any) -> bool | float:
    """Whether a class was right, or how far a predicted value was off (absolute error)."""
    if isinstance(label, (int, float)) and not isinstance(label, bool) and prediction is not None \
            and not isinstance(prediction, str):
        return abs(float(prediction) - float(label))
    return label == prediction


@dataclass
class FeedbackJoin:
    """Recent answers by request id, and the labels that arrived for them."""

    capacity: int = 100_000
    window: int = 10_000
    answers: OrderedDict = field(default_factory=OrderedDict)
    outcomes: dict[int, deque] = field(default_factory=dict)
    labelled_rows: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0  # rows of the remembered answers (at most ``capacity``)
    pinned_labels: int = 0  # labelled rows of pinned answers (kept for retraining, not for accuracy)

    def add(self, records: Any) -> None:
        """Remember the answered rows of a record batch or view (shadow answers are never
        returned, so never labelled)."""
        view = as_view(records)
        if view.num_rows == 0 or "arm" not in view.batch.schema.names:
            return
        keep = view.answered & np.isin(view.column("arm"), ANSWERING_ARMS)
        if not keep.any():
            return
        kept = view.batch if keep.all() else view.batch.filter(pa.array(keep))
        ids = view.column("request_id")[keep]
        versions, predictions, arms = view.versions[keep], view.column("prediction")[keep], view.column("arm")[keep]
        # the rows of one request are contiguous in a batch: one entry per run of equal ids
        starts = np.concatenate([[0], np.nonzero(ids[1:] != ids[:-1])[0] + 1, [len(ids)]])
        for start, stop in zip(starts[:-1].tolist(), starts[1:].tolist()):
            request_id = ids[start]
            entry = self.answers.get(request_id)
            if entry is None:
                entry = self.answers[request_id] = Answer(int(versions[start]), [], [], str(arms[start]))
            entry.predictions.extend(predictions[start:stop].tolist())
            entry.rows.append(kept.slice(start, stop - start))
            self.rows += stop - start
            self.answers.move_to_end(request_id)
        while self.rows > self.capacity and self.answers:
            self.rows -= len(self.answers.popitem(last=False)[1].predictions)

    def unknown(self, request_ids: list[str]) -> list[str]:
        """The ids among ``request_ids`` this join does not remember."""
        return [rid for rid in request_ids if rid not in self.answers]

    def label(self, items: list[tuple[str, list[str]]], now: float, label_column: str, dry_run: bool = False) -> int:
        """Join labels (one per row of each request) to their answers; returns the rows labelled.
        All or nothing: nothing is recorded unless every item fits (``dry_run``: only check).

        Raises:
            NotFoundError: request ids this join does not remember (named, up to 20).
            ConflictError: a request already labelled.
            InvalidRequestError: a request got a different number of labels than it had rows, or
                came twice in ``items``.
        """
        ids = [request_id for request_id, _ in items]
        unknown = self.unknown(ids)
        if unknown:
            raise NotFoundError(what="answered request ids (nothing was recorded)", name=", ".join(unknown[:20]))
        repeated = sorted(rid for rid, n in Counter(ids).items() if n > 1)
        if repeated:
            raise InvalidRequestError(field="request_id", problem=f"request {repeated[0]} is labelled twice in this "
                                      "call (nothing was recorded)")
        done = [rid for rid in ids if self.answers[rid].labelled]
        if done:
            raise ConflictError(what="feedback", problem=f"request(s) {', '.join(done[:20])} already labelled: a "
                                "request is labelled once (nothing was recorded)")
        for request_id, labels in items:
            rows = len(self.answers[request_id].predictions)
            if len(labels) != rows:
                raise InvalidRequestError(field="labels", problem=f"request {request_id} had {rows} rows, got "
                                          f"{len(labels)} labels (nothing was recorded)")
        if dry_run:
            return sum(len(labels) for _, labels in items)
        count = 0
        for request_id, labels in items:
            answer = self.answers[request_id]
            answer.labelled = True
            routed = answer.arm in ROUTED_ARMS
            outcomes = self.outcomes.setdefault(answer.version, deque(maxlen=self.window)) if routed else None
            for label, prediction, row in zip(labels, answer.predictions, answer.features()):
                if outcomes is not None:
                    outcomes.append((now, outcome_of(label, prediction)))
                else:
                    self.pinned_labels += 1
                self.labelled_rows.append({**row, label_column: label, "__version__": answer.version,
                                           "__request_id__": request_id, "__time__": now})
                count += 1
        return count

    def accuracy(self, since: float | None = None) -> dict[str, dict[str, Any]]:
        """Per version since a UNIX time: labelled rows and accuracy (classifiers), or mean
        absolute and root mean squared error (regressions)."""
        result: dict[str, dict[str, Any]] = {}
        for version, outcomes in self.outcomes.items():
            kept = [outcome for t, outcome in outcomes if since is None or t >= since]
            entry: dict[str, Any] = {"labelled": len(kept), "accuracy": None}
            if kept and isinstance(kept[0], bool):
                entry["accuracy"] = sum(kept) / len(kept)
            elif kept:
                errors = np.asarray(kept, dtype=np.float64)
                entry.update(mae=float(np.mean(errors)), rmse=float(np.sqrt(np.mean(errors ** 2))))
            result[str(version)] = entry
        return result

    def drain_labelled(self) -> list[dict[str, Any]]:
        """Labelled rows not yet written to the log."""
        rows, self.labelled_rows = self.labelled_rows, []
        return rows


def trainable_rows(rows: list[dict[str, Any]], embedding_versions: set[int]) -> list[dict[str, Any]]:
    """The labelled rows retraining can learn from: a version with tensor inputs records its
    embedding instead of its inputs, so its rows are kept for accuracy but not for training."""
    return [row for row in rows if row["__version__"] not in embedding_versions]
