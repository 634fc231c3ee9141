"""Small frozen value objects shared across raymlops."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from raymlops.errors import InvalidNameError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid model or alias name.

    Names are 1-64 characters of ``a-z 0-9 _ -`` starting with a letter or digit, so a
    name can never climb out of the artifact root or inject into a path or URL.

    Raises:
        InvalidNameError: naming what was checked and the value.
    """
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidNameError(what=what, value=value)
    return value


@dataclass(frozen=True)
class ModelRef:
    """A reference to a model version: ``name``, ``name:3`` or ``name@champion``."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``.

        Raises:
            InvalidNameError: for a bad name, alias or version.
        """
        if "@" in text:
            name, alias = text.split("@", 1)
            return cls(check_name(name, "model name"), alias=check_name(alias, "alias"))
        if ":" in text:
            name, version = text.split(":", 1)
            if not version.isdigit() or int(version) < 1:
                raise InvalidNameError(what="version", value=version, rule="use a positive integer")
            return cls(check_name(name, "model name"), version=int(version))
        return cls(check_name(text, "model name"))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


@dataclass(frozen=True)
class ModelVersion:
    """One immutable registered version of a model."""

    name: str
    version: int
    created_at: float
    artifact_uri: str
    manifest: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    created_by: str = ""

    @property
    def ref(self) -> ModelRef:
        """This version as a reference."""
        return ModelRef(self.name, version=self.version)


@dataclass(frozen=True)
class AliasMove:
    """One change of an alias, kept forever as history."""

    model: str
    alias: str
    old_version: int | None
    new_version: int | None
    time: float
    actor: str


@dataclass(frozen=True)
class Event:
    """An append-only registry event: registered, alias moved, rollout step, drift detected ..."""

    id: int
    model: str
    version: int | None
    kind: str
    time: float
    actor: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictionRecord:
    """One answered (or rejected) row of a prediction request, as the monitor sees it.

    Attributes:
        request_id: the ``x-request-id`` of the request.
        time: UNIX time the request was answered.
        model, version, arm: which version answered and as what (``stable``, ``canary``,
            ``pinned`` or ``shadow``); version is ``None`` when no version was chosen.
        latency_ms: time spent predicting.
        status: the HTTP status of the answer.
        prediction: the predicted class (``None`` for a rejected request).
        confidence: the model's confidence in the prediction, when it has one.
        features: the row's input features.
    """

    request_id: str
    time: float
    model: str
    version: int | None
    arm: str
    latency_ms: float
    status: int
    prediction: Any = None
    confidence: float | None = None
    features: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftReport:
    """The result of one drift check of one version's window.

    Attributes:
        model, version: what was checked.
        detector: ``feature`` (KS / Chi-squared per feature), ``output`` (predicted classes),
            ``mmd`` (multivariate) or ``online``.
        backend: ``alibi`` or ``scipy``.
        p_values: per feature (``feature``), or one entry named after the detector.
        distances: the test statistic per entry (KS D, Chi-squared, MMD², online statistic).
        threshold: the p-value threshold an entry must fall below, calibrated to spend ``alpha``
            (online: the statistic threshold).
        drift: the decision (an alarm): some entry below the threshold with an effect of at
            least its minimum.
        window_rows: rows in the tested window.
        time: UNIX time of the check.
        duration_ms: how long the check took.
        alpha: this look's share of the false-alarm budget (its false-alarm probability).
        effects: effect size per entry (Wasserstein in reference std for numeric values, PSI
            for categories and predicted classes).
        min_effect: the least effect per entry that may alarm.
    """

    model: str
    version: int
    detector: str
    backend: str
    p_values: dict[str, float]
    distances: dict[str, float]
    threshold: float
    drift: bool
    window_rows: int
    time: float
    duration_ms: float = 0.0
    alpha: float | None = None
    effects: dict[str, float] = field(default_factory=dict)
    min_effect: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class ArmStats:
    """Health of one version over a period, from the prediction stream.

    Attributes:
        version: the version.
        requests: rows answered or rejected.
        errors: rows with a 5xx status (4xx are the caller's fault and not counted).
        error_rate: errors / requests (0 when there were none).
        latency_p50_ms, latency_p99_ms: of answered rows.
        predictions: predicted class → count (classifiers).
        since: start of the period (UNIX time).
        values: the most recent predicted values (regressions; at most a few thousand).
    """

    version: int
    requests: int
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    predictions: dict[str, int]
    since: float
    values: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)
