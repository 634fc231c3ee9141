"""Model registry: immutable versions, aliases, lineage and events on SQL + pyarrow filesystems."""

from raymlops.registry.lineage import CodeRevision, DataFingerprint, Lineage, Trigger, collect_lineage
from raymlops.registry.registry import Registry
from raymlops.registry.sql import ANY
from raymlops.registry.store import ModelStore

__all__ = [
    "ANY",
    "CodeRevision",
    "DataFingerprint",
    "Lineage",
    "ModelStore",
    "Registry",
    "Trigger",
    "collect_lineage",
]
