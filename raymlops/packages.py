"""Installed distribution versions, as lineage records them and serving compares them."""

from __future__ import annotations

from importlib import metadata as importlib_metadata
from typing import Iterable

NOT_INSTALLED = "not installed"


def installed_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed distribution versions of ``packages`` (``not installed`` when absent)."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = NOT_INSTALLED
    return found
