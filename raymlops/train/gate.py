"""The offline gate: does a new version beat the champion on the same test split? Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GateDecision:
    """The comparison, recorded as an event whatever it decides."""

    passed: bool
    metric: str
    candidate_value: float
    champion_version: int | None
    champion_value: float | None
    margin: float
    reason: str

    def to_payload(self) -> dict:
        """The event payload."""
        return asdict(self)


def decide(metric: str, candidate_value: float, champion_version: int | None, champion_value: float | None,
           margin: float, higher_is_better: bool = True) -> GateDecision:
    """Pass when there is no champion, or the candidate beats it by at least ``margin``."""
    if champion_version is None or champion_value is None:
        return GateDecision(True, metric, candidate_value, None, None, margin, "no champion yet: the first version passes")
    gain = candidate_value - champion_value if higher_is_better else champion_value - candidate_value
    passed = gain >= margin
    verdict = "beats" if passed else "does not beat"
    reason = (f"{metric} {candidate_value:.4f} {verdict} champion v{champion_version}'s {champion_value:.4f} "
              f"by the margin {margin:g} (gain {gain:+.4f})")
    return GateDecision(passed, metric, candidate_value, champion_version, champion_value, margin, reason)
