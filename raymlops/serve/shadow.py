"""Comparing a shadow version's answer with the answer the caller got. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ShadowComparison:
    """How a shadow answer compares with the live one, row by row."""

    rows: int
    disagreements: int

    @property
    def agreement(self) -> float:
        """Share of rows where both versions predicted the same (1.0 for no rows)."""
        return 1.0 - self.disagreements / self.rows if self.rows else 1.0


def compare(live: dict[str, list[Any]], shadow: dict[str, list[Any]]) -> ShadowComparison:
    """Compare the predicted classes of the live and the shadow answer for the same rows.

    Raises:
        ValueError: the answers cover different numbers of rows (a broken shadow version).
    """
    answered, shadowed = live["class"], shadow["class"]
    if len(answered) != len(shadowed):
        raise ValueError(f"the shadow answered {len(shadowed)} rows for {len(answered)}")
    return ShadowComparison(len(answered), sum(a != b for a, b in zip(answered, shadowed)))
