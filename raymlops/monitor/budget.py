"""One false-alarm budget per model version, split across the detectors. Pure.

The budget is the number of false drift alarms a user accepts per ``per_rows`` rows of a
version that does not drift. A *look* is one test of one detector (a window test, or a row fed
to the online detector); by linearity of expectation the expected number of false alarms over
many looks is the sum of each look's false-alarm probability — however correlated the looks
are (windows share one reference). So a detector with share ``s`` of the budget that looks
``L`` times per ``per_rows`` rows tests each look at ``α = s·B / L``; the online detector, whose
looks are rows, gets an expected run length ``ERT = sampled rows per per_rows / (s·B)``. The
verdict (any detector) then raises at most ``B`` false alarms per ``per_rows`` rows in
expectation, and about ``B`` when the detectors rarely alarm together.

A :class:`BudgetLedger` counts, per version, the looks each detector made and the alarms it
raised, so ``drift status`` shows what was expected under no drift against what was spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raymlops.config.monitor import online_overspend
from raymlops.errors import ConfigError

WINDOW_DETECTORS = ("feature", "output", "mmd")
DETECTORS = (*WINDOW_DETECTORS, "online")


@dataclass(frozen=True)
class Allocation:
    """What one detector may spend.

    Attributes:
        detector: ``feature``, ``output``, ``mmd`` or ``online``.
        alarms: expected false alarms of this detector per ``per_rows`` rows.
        looks: looks per ``per_rows`` rows (windows tested; sampled rows for ``online``).
        alpha: false-alarm probability per look (window detectors), else None.
        ert: expected run length in sampled rows (``online``), else None.
    """

    detector: str
    alarms: float
    looks: float
    alpha: float | None = None
    ert: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class BudgetPlan:
    """The budget and its split: ``allocations`` by detector (enabled ones only)."""

    false_alarms: float
    per_rows: int
    allocations: dict[str, Allocation]

    def alpha(self, detector: str) -> float:
        """The per-look false-alarm probability of a window detector."""
        allocation = self.allocations[detector]
        assert allocation.alpha is not None, detector
        return allocation.alpha

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"false_alarms": self.false_alarms, "per_rows": self.per_rows,
                "detectors": {name: a.to_dict() for name, a in self.allocations.items()}}


def plan_budget(detectors: dict[str, Any], window_rows: int) -> BudgetPlan:
    """Split ``detectors.budget`` across the enabled detectors of a ``DetectorCadence`` dump.

    An online detector with an explicit ``ert`` spends what that ERT implies, and the rest is
    split across the window detectors by their shares; otherwise every enabled detector gets
    its share (shares are renormalised over the enabled detectors).

    Raises:
        ConfigError: no detector is enabled, or an explicit online ERT alone spends the whole
            budget (the message names the settings that fix it).
    """
    budget = detectors["budget"]
    total, per_rows = float(budget["false_alarms"]), int(budget["per_rows"])
    online = detectors["online"]
    enabled = {"feature": detectors["feature_wise"], "output": detectors["output"],
               "mmd": detectors["mmd"]["enabled"], "online": online["enabled"]}
    shares = {name: float(budget["shares"].get(name, 0.0)) for name in DETECTORS if enabled[name]}
    if not shares or sum(shares.values()) <= 0:
        raise ConfigError(file="<monitor config>", problems=[("detectors", "no detector with a budget share is enabled")])
    sampled = per_rows * float(online["sample_rate"])
    allocations: dict[str, Allocation] = {}
    remaining = total
    if "online" in shares and online.get("ert"):
        spent = sampled / float(online["ert"])
        if spent >= total:
            raise ConfigError(file="<monitor config>", problems=[("detectors.online.ert", online_overspend(
                float(online["ert"]), float(online["sample_rate"]), total, per_rows))])
        allocations["online"] = Allocation("online", spent, sampled, ert=float(online["ert"]))
        remaining -= spent
        shares.pop("online")
    weight = sum(shares.values())
    for name, share in shares.items():
        alarms = remaining * share / weight
        if name == "online":
            allocations[name] = Allocation(name, alarms, sampled, ert=sampled / alarms)
            continue
        every = int(detectors["mmd"]["every"]) if name == "mmd" else 1
        looks = per_rows / (window_rows * every)
        allocations[name] = Allocation(name, alarms, looks, alpha=min(alarms / looks, 0.5))
    return BudgetPlan(total, per_rows, dict(sorted(allocations.items())))


def describe_limit(allocation: dict[str, Any]) -> str:
    """An allocation's per-look limit for people: ``α 0.01 per window`` or ``ERT 1200 rows``."""
    if allocation.get("alpha") is not None:
        return f"α {allocation['alpha']:.3g} per window"
    return f"ERT {allocation['ert']:.0f} rows" if allocation.get("ert") is not None else ""


@dataclass
class BudgetLedger:
    """Per version: rows checked, and per detector the looks made, the alarms raised and the
    false alarms expected of them if nothing drifted (each look's α summed; the online
    detector: its rows over its ERT)."""

    rows: dict[str, int] = field(default_factory=dict)
    looks: dict[str, int] = field(default_factory=dict)
    alarms: dict[str, int] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    verdict_alarms: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def key(version: int, detector: str) -> str:
        return f"{version}/{detector}"

    def window(self, version: int, rows: int, outcomes: list[tuple[str, bool, float]]) -> None:
        """Book one checked window: ``outcomes`` are ``(detector, alarm, expected false alarms)``."""
        v = str(version)
        self.rows[v] = self.rows.get(v, 0) + rows
        for detector, alarm, expected in outcomes:
            key = self.key(version, detector)
            self.looks[key] = self.looks.get(key, 0) + 1
            self.alarms[key] = self.alarms.get(key, 0) + int(alarm)
            self.expected[key] = self.expected.get(key, 0.0) + expected
        if any(alarm for _, alarm, _ in outcomes):
            self.verdict_alarms[v] = self.verdict_alarms.get(v, 0) + 1

    def of(self, version: int, plan: BudgetPlan | None) -> dict[str, Any]:
        """What ``drift status`` shows for one version: the budget, each detector's share, looks,
        alarms and expected false alarms so far, and the verdict's alarms against the budget."""
        v = str(version)
        rows = self.rows.get(v, 0)
        detectors: dict[str, dict[str, Any]] = {}
        for key in sorted(self.looks):
            version_of, detector = key.split("/", 1)
            if version_of == v:
                detectors[detector] = {"looks": self.looks[key], "alarms": self.alarms.get(key, 0),
                                       "expected_false_alarms": round(self.expected.get(key, 0.0), 4)}
        if plan is not None:
            for name, allocation in plan.allocations.items():
                detectors.setdefault(name, {"looks": 0, "alarms": 0, "expected_false_alarms": 0.0})
                detectors[name]["allocation"] = allocation.to_dict()
        expected = plan.false_alarms * rows / plan.per_rows if plan is not None else None
        return {"false_alarms": plan.false_alarms if plan else None, "per_rows": plan.per_rows if plan else None,
                "rows": rows, "alarms": self.verdict_alarms.get(v, 0),
                "budget_so_far": round(expected, 4) if expected is not None else None, "detectors": detectors}

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps."""
        return {"rows": self.rows, "looks": self.looks, "alarms": self.alarms, "expected": self.expected,
                "verdict_alarms": self.verdict_alarms}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a snapshot."""
        for name in ("rows", "looks", "alarms", "expected", "verdict_alarms"):
            setattr(self, name, dict(state.get(name, {})))
