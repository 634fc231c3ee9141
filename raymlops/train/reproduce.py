"""Re-running a registered version from its lineage (``raymlops train --reproduce NAME:VERSION``).

The recorded config is the recipe: the same config and seed run again, on data whose
content hashes are verified first; where the registry and checkpoints live is today's
setting, not the recipe's. Differences of code revision and package versions are listed
(not refused: a reproduction is how you find out whether they matter), and the metrics of
the new version are compared with the original's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raymlops.config import TrainConfig
from raymlops.errors import ConfigError, DataError
from raymlops.registry.lineage import code_revision, fingerprint, package_versions
from raymlops.types import ModelVersion

#: How close a reproduction's metrics must be to count as the same (CPU, the built-in loop).
METRIC_TOLERANCE = 1e-6
#: Metrics that measure the machine, not the model (listed, never compared).
TIMING_SUFFIXES = ("samples_per_s", "_seconds")
#: Recorded settings that say where things live today, not how the version was made.
PLACE_SETTINGS = ("registry", "storage")


@dataclass(frozen=True)
class Reproduction:
    """What re-running a version needs and what it found before training."""

    original: ModelVersion
    code_differences: list[str]
    package_differences: list[str]

    def lineage_extra(self, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        """What the new version's lineage keeps about the reproduction."""
        extra: dict[str, Any] = {"of": f"{self.original.name}:{self.original.version}", "data_verified": True,
                                 "code_differences": self.code_differences,
                                 "package_differences": self.package_differences}
        if metrics is not None:
            extra["metric_differences"] = metric_differences(self.original.metrics, metrics)
        return extra


def recorded_config(original: ModelVersion, today: TrainConfig) -> TrainConfig:
    """The version's recorded TrainConfig, with today's registry and checkpoint storage, as a
    reproduction of it (trigger ``reproduce``, parent the original).

    Raises:
        ConfigError: the version was not trained by raymlops (imported), or its config no longer validates.
    """
    lineage = original.lineage or {}
    ref = f"{original.name}:{original.version}"
    if (lineage.get("trigger") or {}).get("kind") == "import" or not lineage.get("config"):
        raise ConfigError(file=ref, problems=[("lineage.config", "this version was imported, not trained here: "
                                               "there is no recipe to re-run")])
    places = today.model_dump(mode="json")
    recipe = {**lineage["config"], **{key: places[key] for key in PLACE_SETTINGS}}
    recipe["lineage"] = {"trigger": "reproduce", "parent_version": original.version}
    try:
        return TrainConfig.model_validate(recipe)
    except ValueError as exc:
        raise ConfigError(file=ref, problems=[("lineage.config", f"the recorded config no longer validates: {exc}")]) \
            from None


def verify_data(recorded: list[dict[str, Any]], uris: list[str]) -> None:
    """Check that the files the recipe reads today are the recorded ones, byte for byte.

    Raises:
        DataError: naming the file whose content hash differs, that is missing, or that the recipe no longer reads.
    """
    current = {fp.uri: fp for uri in uris for fp in fingerprint(uri)}
    for entry in recorded:
        found = current.get(entry["uri"])
        if found is None:
            raise DataError(path=entry["uri"], problem="recorded in the lineage, but the recorded config does not "
                            f"read it here (it reads {', '.join(sorted(current)) or 'nothing'})")
        if found.sha256 != entry["sha256"]:
            raise DataError(path=entry["uri"], problem=f"content changed since the version was trained (sha256 "
                            f"{found.sha256[:12]}…, recorded {entry['sha256'][:12]}…)")


def differences(recorded: dict[str, Any], today: dict[str, Any]) -> list[str]:
    """``name: recorded → today`` for every key whose value differs (sorted)."""
    return [f"{key}: {recorded.get(key)} → {today.get(key)}" for key in sorted(set(recorded) | set(today))
            if recorded.get(key) != today.get(key)]


def metric_differences(original: dict[str, float], reproduced: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{metric: {original, reproduced, delta}}`` for the metrics both have (timings such as
    samples/s are left out: they measure the machine)."""
    return {key: {"original": original[key], "reproduced": reproduced[key], "delta": reproduced[key] - original[key]}
            for key in sorted(set(original) & set(reproduced)) if not key.endswith(TIMING_SUFFIXES)}


def within_tolerance(diffs: dict[str, dict[str, float]], tolerance: float = METRIC_TOLERANCE) -> bool:
    """Whether every metric matches within ``tolerance`` (absolute)."""
    return all(abs(d["delta"]) <= tolerance for d in diffs.values())


def check_reproduction(original: ModelVersion, data_uris: list[str]) -> Reproduction:
    """Everything checked before a reproduction trains: its data, code and packages.

    Args:
        original: the version to re-run.
        data_uris: the files its recorded config (:func:`recorded_config`) reads here (train, valid, test).

    Raises:
        DataError: a data file differs from the recorded one (named).
    """
    lineage = original.lineage
    verify_data(lineage.get("data", []), data_uris)
    code = code_revision().model_dump()
    recorded_code = {k: v for k, v in (lineage.get("code") or {}).items() if v is not None}
    code_diffs = differences(recorded_code, {k: code.get(k) for k in recorded_code})
    return Reproduction(original, code_diffs, differences(lineage.get("packages", {}), package_versions()))


def describe_reproduction(reproduction: Reproduction, metrics: dict[str, float], new_version: int) -> str:
    """Lines for the job log: the new version, metric deltas, and environment differences."""
    diffs = metric_differences(reproduction.original.metrics, metrics)
    same = within_tolerance(diffs)
    original = f"{reproduction.original.name}:{reproduction.original.version}"
    lines = [f"reproduced {original} as v{new_version}: metrics "
             f"{'match' if same else 'differ'} (tolerance {METRIC_TOLERANCE:g})"]
    lines += [f"  {k}: {d['original']:.6g} → {d['reproduced']:.6g} (Δ {d['delta']:+.3g})" for k, d in diffs.items()]
    lines.append("code: " + ("; ".join(reproduction.code_differences) or "same"))
    lines.append("packages: " + ("; ".join(reproduction.package_differences) or "same"))
    return "\n".join(lines)
