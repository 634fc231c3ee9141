"""The model contract every flavor implements: load a version's directory, predict on a batch
of columns, and say what it takes and gives (its signature and outputs) and what the drift
monitor watches. Serving, v2, prediction records, shadow comparison, rollout gates, the
monitor and evaluation only ever see this contract.

A :class:`Prediction` carries named output arrays (first axis: rows) described by
:class:`OutputSpec` s, plus the one output the monitor and the records watch (a class, or a
value) and, where the model has one, a confidence per row. From those, /v1 rows and v2
tensors are built without knowing the flavor. Pure: no torch, no Ray.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from raymlops.data.schema import DatasetSchema

#: The file of a version naming its flavor (and the flavor's own fields).
MODEL_FILE = "model.json"
#: The file holding a version's input signature (a DatasetSchema).
SIGNATURE_FILE = "signature.json"
#: A batch as columns: feature name → values (a list or a numpy array, one value per row).
Columns = Mapping[str, Any]


@dataclass(frozen=True)
class OutputSpec:
    """One named output: its v2 datatype, its shape per row, and the names along its last axis
    (a /v1 answer shows such an output as an object of name → value)."""

    name: str
    datatype: str
    shape: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """The v2 metadata entry (``-1`` for the rows)."""
        return {"name": self.name, "datatype": self.datatype, "shape": [-1, *self.shape]}


@dataclass(frozen=True)
class Prediction:
    """A model's answer for a batch.

    Attributes:
        outputs: name → array whose first axis is the rows.
        specs: one :class:`OutputSpec` per output, in answer order.
        watched: the output the records carry as ``prediction`` and output drift tests.
        confidence: per row, how sure the model is (None when it has no such notion).
        monitored: the columns the records carry for drift instead of the inputs (an embedding
            of tensor inputs); None for tabular models, whose features are watched as they are.
    """

    outputs: dict[str, np.ndarray]
    specs: tuple[OutputSpec, ...]
    watched: str
    confidence: np.ndarray | None = None
    monitored: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.outputs[self.watched])

    @classmethod
    def from_probabilities(cls, probabilities: Any, classes: Sequence[str]) -> Prediction:
        """A classifier's answer from class probabilities (rows × classes): ``class`` and
        ``probabilities`` outputs, the class watched, its probability as the confidence."""
        return classes_prediction(probabilities, classes)

    @classmethod
    def from_values(cls, values: Any) -> Prediction:
        """A regressor's answer from one predicted value per row: a ``value`` output, watched."""
        return values_prediction(values)

    def non_finite(self) -> str | None:
        """What is not finite in the numeric outputs (``value row 3``), or None when all are."""
        for name, values in self.outputs.items():
            if values.dtype.kind in "fc":
                bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
                if bad.any():
                    return f"{name} row {int(np.argmax(bad))}"
        return None

    @property
    def predicted(self) -> list[Any]:
        """The watched output as plain Python values (a class name, or a number, per row)."""
        return self.outputs[self.watched].tolist()

    def rows(self) -> list[dict[str, Any]]:
        """One /v1 object per row: output name → value (an object of label → value where the
        output names its last axis)."""
        columns = {spec.name: self.outputs[spec.name].tolist() for spec in self.specs}
        answers = []
        for i in range(len(self)):
            row = {}
            for spec in self.specs:
                value = columns[spec.name][i]
                row[spec.name] = dict(zip(spec.labels, value)) if spec.labels else value
            answers.append(row)
        return answers

    def tensors(self) -> list[dict[str, Any]]:
        """The v2 output tensors (row-major flattened data)."""
        out = []
        for spec in self.specs:
            values = self.outputs[spec.name]
            data = values.reshape(-1).tolist()
            out.append({"name": spec.name, "shape": [len(self), *spec.shape], "datatype": spec.datatype, "data": data})
        return out

    def split(self, sizes: Sequence[int]) -> list[Prediction]:
        """Consecutive parts of ``sizes`` rows (the inverse of :meth:`concat`)."""
        parts, start = [], 0
        for size in sizes:
            cut = slice(start, start + size)
            parts.append(Prediction({k: v[cut] for k, v in self.outputs.items()}, self.specs, self.watched,
                                    None if self.confidence is None else self.confidence[cut],
                                    None if self.monitored is None else {k: v[cut] for k, v in self.monitored.items()}))
            start += size
        return parts

    @staticmethod
    def concat(parts: Sequence[Prediction]) -> Prediction:
        """Several answers of one model as one."""
        first = parts[0]
        confidence = None if first.confidence is None else np.concatenate([p.confidence for p in parts])
        monitored = None if first.monitored is None else \
            {k: np.concatenate([p.monitored[k] for p in parts]) for k in first.monitored}  # type: ignore[index]
        return Prediction({k: np.concatenate([p.outputs[k] for p in parts]) for k in first.outputs}, first.specs,
                          first.watched, confidence, monitored)


def classes_prediction(probabilities: np.ndarray, classes: Sequence[str]) -> Prediction:
    """A classifier's answer from its class probabilities (rows × classes)."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    predicted = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
    return Prediction({"class": predicted, "probabilities": probabilities}, classification_outputs(classes),
                      "class", probabilities.max(axis=1).astype(np.float64))


def logits_prediction(logits: np.ndarray, classes: Sequence[str]) -> Prediction:
    """A classifier's answer from its logits (rows × classes), softmaxed."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return classes_prediction(shifted / shifted.sum(axis=1, keepdims=True), classes)


def values_prediction(values: np.ndarray) -> Prediction:
    """A regressor's answer from its predicted values (one per row)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return Prediction({"value": values}, regression_outputs(), "value")


def classification_outputs(classes: Sequence[str]) -> tuple[OutputSpec, ...]:
    """Outputs of a classifier: the class, and the probability of each class."""
    return (OutputSpec("class", "BYTES"), OutputSpec("probabilities", "FP32", (len(classes),), tuple(classes)))


def regression_outputs() -> tuple[OutputSpec, ...]:
    """Outputs of a regressor: one value per row."""
    return (OutputSpec("value", "FP64"),)


def outputs_of(signature: DatasetSchema) -> tuple[OutputSpec, ...]:
    """The outputs of a tabular model for its signature's task."""
    return classification_outputs(signature.classes) if signature.is_classification else regression_outputs()


class Model(ABC):
    """One loaded model version (the contract every flavor implements; in the spirit of
    MLServer's ``MLModel``).

    A flavor subclasses this, sets :attr:`flavor`, and implements :meth:`load` and
    :meth:`predict`. The other methods have defaults for tabular models.

    Attributes:
        flavor: the name written to ``model.json`` (``torch-tabular``, ``sklearn``, …) or, for a
            user's own flavor, its import path ``package.module:Class``.
        signature: the named, typed input columns, the task and the label.
    """

    flavor: ClassVar[str] = ""
    #: Distributions whose release decides how this flavor's files load and answer; recorded
    #: with every version and compared by serving replicas (:mod:`raymlops.models.environment`).
    requirements: ClassVar[tuple[str, ...]] = ("numpy",)
    signature: DatasetSchema

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> Model:
        """Load a downloaded version (checksums already verified).

        Args:
            directory: the version's files.
            spec: the contents of its ``model.json`` (the flavor's own fields).
        """

    @abstractmethod
    def predict(self, columns: Columns) -> Prediction:
        """Answer for a batch given as validated columns (feature name → values)."""

    def save(self, directory: Path) -> None:
        """Write this flavor's files (``model.json`` naming the flavor, the signature, the model)."""
        raise NotImplementedError(f"the {self.flavor or type(self).__name__} flavor cannot save a version")

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        """What :meth:`predict` answers (v2 metadata shows it)."""
        return outputs_of(self.signature)

    def probe(self) -> dict[str, list]:
        """One harmless row of the signature (health checks predict on it)."""
        return {f.name: [0.0 if f.kind == "numeric" else ""] for f in self.signature.features}
