"""Drift detection quality on real data: false alarms against the budget, delay to detection,
misses, the online detector's run length and the label-free accuracy estimate — raymlops'
monitor checks against alibi-detect run directly on the same streams.

    python benchmarks/drift_quality.py [--streams 50] [--shifted 20] [--datasets breast_cancer,wine,digits,synth] [--write]

For each data set (scikit-learn's breast_cancer, wine and digits, bundled with the package, and
the project's synthetic generator): a logistic regression is fit on half the rows; the other half
is the population a version meets in production. Every stream draws its reference (what training
would save) and its rows from that held-out half, so in-distribution streams are exactly under the
null, and the model never trained on them.

- In distribution (``--streams`` per data set, ``--rows`` each): false alarms per 10,000 rows of
  each detector and of the verdict (any detector), against the configured budget — with the least
  effect sizes off (calibration alone) and at their defaults; the raw alibi-detect TabularDrift at
  the same per-window false-alarm probability (Bonferroni, its default) and at p_val 0.05.
- Shifted (``--shifted`` per kind): in-distribution rows, then one of: the rarest class
  over-sampled ×3; a covariate shift of 0.5 standard deviations on 3 numeric features; a label
  prior shift (the majority class's share halved). Delay = rows after the change until the first
  alarm (median, p90), and misses within ``--max-windows`` windows after it.
- Online: alibi-detect's MMDDriftOnline calibrated at ``--ert``; its measured run length between
  false alarms on in-distribution rows.
- Label-free accuracy: per in-distribution stream, the estimate (confidence calibrated on the
  reference) against the stream's realised accuracy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from benchmarks_common import machine_description, write_section

from raymlops.config import DetectorCadence, SynthConfig
from raymlops.data.prepare import infer_schema
from raymlops.data.synth import generate
from raymlops.monitor.checker import VersionChecker, VersionReference
from raymlops.monitor.window import CONFIDENCE, PREDICTION, Window

WINDOW = 100
BUDGET = {"false_alarms": 1.0, "per_rows": 2000}
DEFAULT_EFFECT = DetectorCadence().min_effect


@dataclass
class Population:
    """A data set's held-out half with the model's answers on it."""

    name: str
    schema: object
    features: dict[str, np.ndarray]
    numeric: list[str]
    labels: np.ndarray
    predict: object  # features dict -> (predictions, confidences)

    @property
    def rows(self) -> int:
        return len(self.labels)

    def answers(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return self.predict(features)


def load(name: str) -> Population:
    """Fit the model on one half of the data set; the other half is the population."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if name == "synth":
        table = generate(SynthConfig(rows=4000, seed=7))
        labels = np.asarray(table.column("y").to_pylist(), dtype=object)
        columns = {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names if n != "y"}
    else:
        import sklearn.datasets

        data = getattr(sklearn.datasets, f"load_{name}")()
        labels = np.asarray([str(v) for v in data.target], dtype=object)
        columns = {f"f{i}": data.data[:, i].astype(np.float64) for i in range(data.data.shape[1])}
    categorical = [n for n, v in columns.items() if v.dtype == object]
    numeric = [n for n in columns if n not in categorical]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    train, held = order[: len(order) // 2], order[len(order) // 2:]
    frame_of = _frame(numeric, categorical)
    encoder = ColumnTransformer([("num", StandardScaler(), numeric)]
                                + ([("cat", OneHotEncoder(handle_unknown="ignore"), categorical)] if categorical else []))
    model = make_pipeline(encoder, LogisticRegression(max_iter=5000))
    model.fit(frame_of({n: v[train] for n, v in columns.items()}), labels[train])

    def predict(features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        probabilities = model.predict_proba(frame_of(features))
        best = probabilities.argmax(axis=1)
        return model.classes_[best].astype(object), probabilities[np.arange(len(best)), best]

    features = {n: v[held] for n, v in columns.items()}
    table = pa.table({**{n: pa.array(v.tolist()) for n, v in features.items()}, "label": pa.array(labels[held].tolist())})
    schema = infer_schema(table, name, "label", categorical, name)
    return Population(name, schema, features, numeric, labels[held], predict)


def _frame(numeric: list[str], categorical: list[str]):
    import pandas as pd

    return lambda features: pd.DataFrame({n: features[n] for n in [*numeric, *categorical]})


def take(population: Population, index: np.ndarray, shift: dict[str, float] | None = None):
    """Rows ``index`` of the population (numeric features shifted by ``shift``: name → amount),
    with the model's predictions and confidences on them."""
    features = {n: v[index] for n, v in population.features.items()}
    for name, amount in (shift or {}).items():
        features[name] = features[name] + amount
    predictions, confidence = population.answers(features)
    return features, predictions, confidence, population.labels[index]


def cadence(min_effect: bool = False) -> dict:
    changes = {"budget": BUDGET, "mmd": {"every": 5, "reference_rows": 500, "n_permutations": 100},
               "online": {"enabled": False}}
    if not min_effect:
        changes["min_effect"] = {"wasserstein": 0.0, "psi": 0.0}
    return DetectorCadence(**changes).model_dump()


def checker_for(population: Population, rng: np.random.Generator, seed: int, reference_rows: int = 500):
    index = rng.choice(population.rows, reference_rows, replace=True)
    features, predictions, confidence, labels = take(population, index)
    reference = VersionReference(population.schema, {n: v.tolist() for n, v in features.items()},
                                 predictions.tolist(), {"backend": "scipy"}, confidence.tolist(), labels.tolist())
    return VersionChecker("bench", 1, reference, cadence(), WINDOW, seed=seed), features


def window_of(features, predictions, confidence, start: int) -> Window:
    window = Window(1, 0.0)
    columns = {n: pa.array(v[start:start + WINDOW].tolist()) for n, v in features.items()}
    columns[PREDICTION] = pa.array([str(p) for p in predictions[start:start + WINDOW]])
    columns[CONFIDENCE] = pa.array(confidence[start:start + WINDOW].astype(np.float64))
    window.append(pa.table(columns))
    return window


class RawAlibi:
    """alibi-detect's TabularDrift on the version's reference, as a user would run it directly."""

    def __init__(self, checker: VersionChecker, p_val: float) -> None:
        from alibi_detect.cd import TabularDrift

        ref = checker.reference
        categorical = {i: None for i, n in enumerate(ref.features) if n in ref.categorical}
        self.reference = ref
        self.detector = TabularDrift(ref.matrix(ref.values), p_val=p_val, categories_per_feature=categorical or None)

    def p_values(self, features: dict[str, np.ndarray]) -> np.ndarray:
        x = self.reference.matrix(self.reference.coded(features))
        return np.asarray(self.detector.predict(x, drift_type="batch", return_p_val=True)["data"]["p_val"])

    def drift(self, features: dict[str, np.ndarray], p_val: float) -> bool:
        """alibi's own decision (Bonferroni: any p < p_val / features) at ``p_val``."""
        p = self.p_values(features)
        return bool((p < p_val / len(p)).any())


def alarms_default_effect(report, categorical: set[str]) -> bool:
    """The report's decision had the default least effect sizes applied (classifiers: the output's
    effect is a PSI)."""
    if report.detector not in ("feature", "output"):
        return report.drift
    for name, p in report.p_values.items():
        kind_psi = report.detector == "output" or name in categorical
        least = DEFAULT_EFFECT.psi if kind_psi else DEFAULT_EFFECT.wasserstein
        if p < report.threshold and report.effects.get(name, 0.0) >= least:
            return True
    return False


def in_distribution(population: Population, streams: int, rows: int) -> dict:
    """False alarms per detector and of the verdict, raw alibi's, and the accuracy estimate's error."""
    alarms = {"feature": 0, "output": 0, "mmd": 0, "verdict": 0, "verdict_default_effect": 0, "raw_matched": 0,
              "raw_005": 0}
    estimate_errors, calibration_s = [], []
    matched_p = BUDGET["false_alarms"] * WINDOW / BUDGET["per_rows"]
    for s in range(streams):
        rng = np.random.default_rng(1000 + s)
        started = time.perf_counter()
        checker, _ = checker_for(population, rng, seed=s)
        calibration_s.append(time.perf_counter() - started)
        raw = RawAlibi(checker, 0.05)
        index = rng.choice(population.rows, rows, replace=True)
        features, predictions, confidence, labels = take(population, index)
        for start in range(0, rows - WINDOW + 1, WINDOW):
            window = window_of(features, predictions, confidence, start)
            reports = checker.check(window)
            for report in reports:
                alarms[report.detector] += int(report.drift)
            alarms["verdict"] += int(any(r.drift for r in reports))
            alarms["verdict_default_effect"] += int(any(alarms_default_effect(r, checker.categorical) for r in reports))
            part = {n: v[start:start + WINDOW] for n, v in features.items()}
            p = raw.p_values(part)
            alarms["raw_matched"] += int((p < matched_p / len(p)).any())
            alarms["raw_005"] += int((p < 0.05 / len(p)).any())
        if checker.estimator is not None:
            estimate = checker.estimator.estimate(confidence)
            estimate_errors.append(abs(estimate - float(np.mean(predictions == labels))))
    per_10k = 10_000 / (streams * (rows // WINDOW) * WINDOW)
    return {"per_10k": {k: v * per_10k for k, v in alarms.items()}, "alarms": alarms,
            "estimate_errors": estimate_errors, "calibration_s": statistics.median(calibration_s),
            "alpha": {name: a.alpha for name, a in checker.plan.allocations.items()}}


def shifted_stream(population: Population, kind: str, rng: np.random.Generator, rows: int):
    """Rows after a change of ``kind``: ``oversample``, ``covariate`` or ``prior``."""
    if kind == "covariate":
        chosen = rng.choice(population.numeric, min(3, len(population.numeric)), replace=False)
        shift = {n: 0.5 * float(np.std(population.features[n])) for n in chosen}
        return take(population, rng.choice(population.rows, rows, replace=True), shift)
    classes, counts = np.unique(population.labels, return_counts=True)
    prior = counts / counts.sum()
    if kind == "oversample":
        weight = np.where(population.labels == classes[counts.argmin()], 3.0, 1.0)
    else:
        target = prior.copy()
        big = counts.argmax()
        target[big] = prior[big] / 2
        others = np.arange(len(prior)) != big
        target[others] = prior[others] / prior[others].sum() * (1 - target[big])
        weight = (target / prior)[np.searchsorted(classes, population.labels)]
    return take(population, rng.choice(population.rows, rows, replace=True, p=weight / weight.sum()))


def delays(population: Population, kind: str, streams: int, max_windows: int, pre_windows: int = 2) -> dict:
    """Rows after the change until the first alarm, ours and raw alibi's (budget-matched)."""
    ours, raw, missed_ours, missed_raw = [], [], 0, 0
    matched_p = BUDGET["false_alarms"] * WINDOW / BUDGET["per_rows"]
    for s in range(streams):
        rng = np.random.default_rng(5000 + s)
        checker, _ = checker_for(population, rng, seed=s)
        baseline = RawAlibi(checker, matched_p)  # alibi's own decision at the budget's per-window α
        calm = take(population, rng.choice(population.rows, pre_windows * WINDOW, replace=True))
        moved = shifted_stream(population, kind, rng, max_windows * WINDOW)
        for start in range(0, pre_windows * WINDOW, WINDOW):
            checker.check(window_of(calm[0], calm[1], calm[2], start))
        found_ours = found_raw = None
        for w in range(max_windows):
            start = w * WINDOW
            if found_ours is None and any(r.drift for r in checker.check(window_of(moved[0], moved[1], moved[2], start))):
                found_ours = (w + 1) * WINDOW
            if found_raw is None and baseline.drift({n: v[start:start + WINDOW] for n, v in moved[0].items()},
                                                       matched_p):
                found_raw = (w + 1) * WINDOW
            if found_ours is not None and found_raw is not None:
                break
        if found_ours is None:
            missed_ours += 1
        else:
            ours.append(found_ours)
        if found_raw is None:
            missed_raw += 1
        else:
            raw.append(found_raw)
    return {"ours": ours, "raw": raw, "missed_ours": missed_ours, "missed_raw": missed_raw}


def online_run_length(population: Population, ert: int, runs: int) -> dict:
    """Measured rows between false alarms of alibi-detect's MMDDriftOnline calibrated at ``ert``."""
    from raymlops.monitor.detectors import build_online, online_input

    rng = np.random.default_rng(9)
    checker, _ = checker_for(population, rng, seed=9)
    started = time.perf_counter()
    detector = build_online("mmd", checker.reference, 500, ert=ert, window_size=10, n_bootstraps=10 * ert)
    calibration = time.perf_counter() - started
    lengths, budget = [], runs * ert * 4
    while len(lengths) < runs and budget > 0:
        features = take(population, rng.choice(population.rows, ert, replace=True))[0]
        x = online_input("mmd", checker.reference, features)
        for row in x:
            budget -= 1
            result = detector.predict(row)["data"]
            if result["is_drift"]:
                lengths.append(int(result["time"]))
                detector.reset_state()
                if len(lengths) >= runs:
                    break
    return {"lengths": lengths, "calibration_s": calibration}


def measure(name: str, args: argparse.Namespace) -> dict:
    """Every figure of one data set, as table rows."""
    budget_10k = BUDGET["false_alarms"] * 10_000 / BUDGET["per_rows"]
    population = load(name)
    started = time.perf_counter()
    calm = in_distribution(population, args.streams, args.rows)
    r = calm["per_10k"]
    out = {"alpha": calm["alpha"], "estimate": None, "delays": []}
    out["false"] = (f"| {name} | {population.rows} | {r['feature']:.2f} | {r['output']:.2f} | {r['mmd']:.2f} | "
                    f"**{r['verdict']:.2f}** ({r['verdict'] / budget_10k:.2f}×) | {r['verdict_default_effect']:.2f} | "
                    f"{r['raw_matched']:.2f} | {r['raw_005']:.2f} | {calm['calibration_s']:.2f} s |")
    errors = calm["estimate_errors"]
    if errors:
        out["estimate"] = (f"| {name} | {100 * statistics.mean(errors):.2f} | {100 * np.percentile(errors, 90):.2f} | "
                           f"{100 * max(errors):.2f} |")
    for kind in ("oversample", "covariate", "prior"):
        found = delays(population, kind, args.shifted, args.max_windows)
        ours, raw = quantiles(found["ours"]), quantiles(found["raw"])
        ratio = (f"{np.median(found['ours']) / np.median(found['raw']):.2f}" if found["ours"] and found["raw"]
                 else "–")
        out["delays"].append(f"| {name} | {kind} | {ours[0]} / {ours[1]} | {found['missed_ours']}/{args.shifted} | "
                             f"{raw[0]} / {raw[1]} | {found['missed_raw']}/{args.shifted} | {ratio} |")
    online = online_run_length(population, args.ert, args.online_runs)
    lengths = online["lengths"]
    mean = statistics.mean(lengths) if lengths else float("nan")
    spread = statistics.stdev(lengths) / np.sqrt(len(lengths)) if len(lengths) > 1 else float("nan")
    out["online"] = (f"| {name} | {args.ert} | {len(lengths)} | {mean:.0f} ± {spread:.0f} | {mean / args.ert:.2f}× | "
                     f"{online['calibration_s']:.1f} s |")
    print(f"{name}: {time.perf_counter() - started:.0f} s", out["false"], *out["delays"], out["online"],
          out["estimate"] or "", sep="\n", file=sys.stderr, flush=True)
    return out


def quantiles(values: list[float]) -> tuple[str, str]:
    if not values:
        return "–", "–"
    return f"{np.median(values):.0f}", f"{np.percentile(values, 90):.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="breast_cancer,wine,digits,synth")
    parser.add_argument("--streams", type=int, default=50, help="in-distribution streams per data set")
    parser.add_argument("--rows", type=int, default=6000, help="rows per in-distribution stream")
    parser.add_argument("--shifted", type=int, default=20, help="streams per data set and shift kind")
    parser.add_argument("--max-windows", type=int, default=30, help="windows after a change before it counts as missed")
    parser.add_argument("--ert", type=int, default=150)
    parser.add_argument("--online-runs", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="data sets measured in parallel")
    parser.add_argument("--write", action="store_true", help="replace the section of benchmarks/RESULTS.md")
    args = parser.parse_args()

    budget_10k = BUDGET["false_alarms"] * 10_000 / BUDGET["per_rows"]
    names = args.datasets.split(",")
    with ProcessPoolExecutor(max_workers=min(args.jobs, len(names))) as pool:
        measured = list(pool.map(measure, names, [args] * len(names)))
    false_rows = [m["false"] for m in measured]
    delay_rows = [row for m in measured for row in m["delays"]]
    online_rows = [m["online"] for m in measured]
    estimate_rows = [m["estimate"] for m in measured if m["estimate"]]
    calm = measured[-1]
    alpha = calm["alpha"]
    body = f"""Machine: {machine_description()}. `python benchmarks/drift_quality.py --streams {args.streams} --rows {args.rows} --shifted {args.shifted}`.
Budget: {BUDGET['false_alarms']:g} false alarm per {BUDGET['per_rows']} rows = {budget_10k:.1f} per 10,000 rows, windows of
{WINDOW} rows, shares feature 0.4 / output 0.4 / MMD 0.2 → per-window α feature {alpha['feature']:.3f}, output
{alpha['output']:.3f}, MMD {alpha['mmd']:.3f} (every 5th window). A logistic regression fit on half of each data
set; references and streams drawn from the other half (never trained on).

**False alarms per 10,000 in-distribution rows** ({args.streams} streams × {args.rows} rows per data set; target:
the verdict within 0.7–1.3× the budget of {budget_10k:.1f}). "default effect": the same windows with the default
least effect sizes (Wasserstein {DEFAULT_EFFECT.wasserstein}, PSI {DEFAULT_EFFECT.psi}). Raw alibi: TabularDrift
(Bonferroni) at the verdict's per-window α ({BUDGET['false_alarms'] * WINDOW / BUDGET['per_rows']:.3f}) and at its
usual p_val 0.05.

| data set | held-out rows | feature | output | MMD | verdict (× budget) | verdict, default effect | raw alibi, same α | raw alibi, p 0.05 | calibration per version |
|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(false_rows)}

**Delay to detection** (rows after the change until the first alarm, median / p90; missed = no alarm within
{args.max_windows} windows; {args.shifted} streams per kind; raw = alibi TabularDrift at the same per-window α;
target: median delay within 1.2× the raw detector's).

| data set | shift | delay (ours) | missed | delay (raw alibi) | missed | ratio |
|---|---|---|---|---|---|---|
{chr(10).join(delay_rows)}

**Online detector run length** (MMDDriftOnline, window 10, bootstraps 10×ERT; mean ± standard error of the
measured rows between false alarms; target 0.7–1.5× the ERT).

| data set | ERT | false alarms | measured run length | ratio | calibration |
|---|---|---|---|---|---|
{chr(10).join(online_rows)}

**Label-free accuracy estimate** on in-distribution streams (absolute error against the stream's realised
accuracy, in accuracy points; target ≤ 3).

| data set | mean | p90 | max |
|---|---|---|---|
{chr(10).join(estimate_rows)}
"""
    print(body)
    if args.write:
        write_section("Drift detection quality", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
