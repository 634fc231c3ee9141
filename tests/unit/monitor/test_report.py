"""The drift report's data and its HTML page (pure)."""

import numpy as np

from raymlops.monitor.report import (
    assemble_report,
    categorical_distribution,
    feature_distributions,
    history_point,
    numeric_distribution,
    timeline,
)
from raymlops.monitor.report_html import render_report
from raymlops.types import Event


def test_numeric_distribution_shows_a_shift():
    rng = np.random.default_rng(0)
    same = numeric_distribution(rng.normal(0, 1, 2000), rng.normal(0, 1, 500))
    moved = numeric_distribution(rng.normal(0, 1, 2000), rng.normal(2, 1, 500))
    assert abs(sum(same["reference"]) - 1) < 0.01 and abs(sum(same["recent"]) - 1) < 0.01
    gap = lambda d: sum(abs(a - b) for a, b in zip(d["reference"], d["recent"]))  # noqa: E731
    assert gap(same) < 0.2 < 0.8 < gap(moved)
    assert moved["recent_mean"] > 1.5 and len(moved["edges"]) == len(moved["reference"]) + 1
    empty = numeric_distribution([1.0, 2.0, 3.0], [])
    assert empty["recent"] == [0.0] * len(empty["reference"]) and empty["recent_rows"] == 0


def test_categorical_distribution_keeps_unseen_values():
    dist = categorical_distribution(["a"] * 8 + ["b"] * 2, ["a", "c", "c", "c"])
    assert dict(zip(dist["categories"], dist["reference"])) == {"a": 0.8, "c": 0.0, "b": 0.2}
    assert dict(zip(dist["categories"], dist["recent"]))["c"] == 0.75


def test_report_holds_history_of_its_version_and_the_timeline():
    reports = [{"time": 100.0 + i, "version": v, "detector": "feature", "p_values": {"x": p, "y": 0.9},
                "threshold": 0.025, "drift": p < 0.025} for i, (v, p) in enumerate([(1, 0.5), (2, 0.4), (1, 0.001)])]
    events = [Event(1, "m", 1, "registered", 90.0, "cli"), Event(2, "m", 1, "alias_moved", 91.0, "cli"),
              Event(3, "m", 1, "drift_detected", 102.0, "monitor", {"detector": "feature"}),
              Event(4, "m", 1, "retrain_submitted", 103.0, "monitor", {"job_id": "raysubmit_1"}),
              Event(5, "m", 2, "rollout_advance", 104.0, "rollout", {"reason": "step 2"})]
    dists = feature_distributions({"x": [0.0, 1.0, 2.0], "c": ["a", "b"]}, {"x": [5.0]}, ["c"])
    report = assemble_report("m", 1, dists, [history_point(r) for r in reports], timeline(events), ["feature"], 0.05)
    assert [p["p_min"] for p in report["p_values"]["feature"]] == [0.5, 0.001]
    assert [e["kind"] for e in report["timeline"]] == ["registered", "drift_detected", "retrain_submitted",
                                                       "rollout_advance"]
    assert report["features"]["c"]["kind"] == "categorical" and report["features"]["x"]["kind"] == "numeric"

    page = render_report(report)
    assert page.startswith("<!DOCTYPE html>") and "DRIFT (feature)" in page
    assert 'aria-label="distribution of x"' in page and 'aria-label="p-values of feature"' in page
    assert "raysubmit_1" in page and "rollout_advance" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: it opens with no network
    assert "<script" not in page


def test_report_escapes_what_it_shows():
    report = assemble_report("<m>", 1, feature_distributions({"<b>": [1.0, 2.0]}, {}, []), [], [], [], 0.05)
    page = render_report(report)
    assert "<m>" not in page and "&lt;m&gt;" in page and "&lt;b&gt;" in page


def test_report_shows_effects_the_budget_and_the_accuracy_estimate():
    from raymlops.config import DetectorCadence
    from raymlops.monitor.budget import BudgetLedger, plan_budget

    plan = plan_budget(DetectorCadence().model_dump(), 100)
    ledger = BudgetLedger()
    ledger.window(1, 100, [("feature", True, plan.alpha("feature")), ("output", False, plan.alpha("output"))])
    detail = {"budget": ledger.of(1, plan),
              "accuracy_estimate": {"state": "ready", "estimated_accuracy": 0.812, "measured_accuracy": 0.79,
                                    "labelled": 40, "reference_accuracy": 0.9}}
    last = {"feature": {"p_values": {"x": 1e-5}, "effects": {"x": 0.73}, "min_effect": {"x": 0.1},
                        "threshold": 0.0012}}
    dists = feature_distributions({"x": [0.0, 1.0, 2.0]}, {"x": [5.0]}, [])
    report = assemble_report("m", 1, dists, [], [], ["feature"], 0.05, detail, last)
    assert report["features"]["x"]["effect"] == 0.73 and report["features"]["x"]["min_effect"] == 0.1
    assert report["budget"]["alarms"] == 1 and report["budget"]["detectors"]["feature"]["looks"] == 1
    page = render_report(report)
    assert "effect 0.73 Wasserstein/std (min 0.1)" in page and "threshold 0.0012" in page
    assert "False-alarm budget" in page and "1 false alarm(s) per 20000 rows" in page
    assert "Estimated accuracy (no labels): 0.812" in page and "40 feedback labels: 0.790" in page
