"""When a stage's result already exists: the version a training or tuning config made from
the same data before. Pure."""

from __future__ import annotations

from typing import Any, Iterable

from raymlops.types import ModelVersion


def data_hashes(fingerprints: Iterable[Any]) -> set[str]:
    """The content hashes of a run's data files (``DataFingerprint`` objects or their dicts)."""
    return {fp["sha256"] if isinstance(fp, dict) else fp.sha256 for fp in fingerprints}


def version_made_from(versions: Iterable[ModelVersion], config_hash: str, hashes: set[str],
                      key: str = "config_hash") -> ModelVersion | None:
    """The newest version whose lineage has this config hash (``key``: ``config_hash``, or
    ``tune_config_hash`` for a tuning run, kept in the lineage's ``extra``) and the same data."""
    for version in sorted(versions, key=lambda v: v.version, reverse=True):
        lineage = version.lineage or {}
        recorded = lineage.get(key) if key == "config_hash" else (lineage.get("extra") or {}).get(key)
        if recorded == config_hash and data_hashes(lineage.get("data", [])) == hashes:
            return version
    return None
