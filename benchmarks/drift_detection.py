"""Drift detection speed and delay on the synthetic generator (20 features), in one run:
the cost of each check, the online detector's calibration time, and how many rows each
detector needs to flag a 0.5-standard-deviation mean shift (and how often it false-alarms).

    python benchmarks/drift_detection.py [--trials 10] [--ert 1000] [--write]

Prints a markdown table and, with --write, replaces the drift section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from benchmarks_common import machine_description, write_section

from raymlops.config import ShiftConfig, SynthConfig
from raymlops.data.synth import generate
from raymlops.monitor.detectors import AlibiFeatureDrift, MMDTest, ScipyFeatureDrift, TabularReference, build_online

NUMERIC = [f"x{i}" for i in range(18)]
CATEGORICAL = ["c0", "c1"]
SEED = 1


def columns(rows: int, offset: int = 0, **shift) -> dict[str, list]:
    table = generate(SynthConfig(rows=offset + rows, seed=SEED, shift=ShiftConfig(**shift)))
    return {n: table.column(n).to_pylist()[offset:] for n in NUMERIC + CATEGORICAL}


def timed(func, repeat: int = 5) -> float:
    """Median milliseconds of ``func()``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class ReleasedTabularDrift:
    """The baseline: alibi-detect's TabularDrift as released (``ks_2samp`` on each numeric column)."""

    def __init__(self, reference: TabularReference) -> None:
        from alibi_detect.cd import TabularDrift

        self.reference = reference
        categorical = {i: None for i, name in enumerate(reference.features) if name in reference.categorical}
        self.detector = TabularDrift(reference.matrix(reference.values), p_val=0.05, correction="bonferroni",
                                     categories_per_feature=categorical)

    def test(self, window: dict) -> None:
        self.detector.predict(self.reference.matrix(self.reference.coded(window)), return_p_val=True)


def per_window(test, windows: list[dict]) -> str:
    """Median (min–max) milliseconds of ``test`` over distinct windows, each tested once."""
    times = []
    for window in windows:
        started = time.perf_counter()
        test(window)
        times.append((time.perf_counter() - started) * 1000)
    return f"{statistics.median(times):.1f} ms ({min(times):.1f}–{max(times):.1f})"


def check_costs(reference: TabularReference, windows: list[dict]) -> list[tuple[str, str]]:
    from raymlops.monitor import ks

    released = ReleasedTabularDrift(reference)
    alibi, scipy = AlibiFeatureDrift(reference, 0.05, "bonferroni"), ScipyFeatureDrift(reference, 0.05, "bonferroni")
    mmd = MMDTest(reference, 1000, 0.05, 100)
    rows = [(f"feature-wise KS/Chi², alibi-detect's TabularDrift as released (ks_2samp per column), 500-row window "
             f"vs 5,000 reference rows, {len(windows)} distinct windows (baseline)", per_window(released.test, windows))]
    for label, detector in (("alibi (raymlops: numeric columns against the reference sorted once)", alibi),
                            ("scipy backend, same", scipy)):
        ks._p_values.clear()  # each starts with no p-value remembered
        rows.append((f"feature-wise KS/Chi², {label}", per_window(detector.test, windows)))
    rows.append(("MMD (PyTorch, 100 permutations), 1,000 reference rows", f"{timed(lambda: mmd.test(windows[0]), 2):.0f} ms"))
    return rows


def tumbling_ks(reference: TabularReference, rows: int, window: int, **shift) -> tuple[int | None, int]:
    """Rows until the first flagged 50-row window (None if none), and windows flagged in all."""
    detector = ScipyFeatureDrift(reference, 0.05, "bonferroni")
    data = columns(rows, offset=5000, **shift)
    first, flagged = None, 0
    for start in range(0, rows - window + 1, window):
        if detector.test({k: v[start:start + window] for k, v in data.items()}).drift:
            flagged += 1
            first = first if first is not None else start + window
    return first, flagged


def online_delays(detector, reference: TabularReference, trials: int, max_rows: int, **shift) -> list[int | None]:
    """Rows until the online detector flags, per trial (None: not within max_rows)."""
    delays = []
    for trial in range(trials):
        data = columns(max_rows, offset=5000 + trial * max_rows, **shift)
        x = reference.embedding(reference.coded(data))
        detector.reset_state()
        delay = None
        for t, row in enumerate(x, start=1):
            if detector.predict(row)["data"]["is_drift"]:
                delay = t
                break
        delays.append(delay)
    return delays


READING = (
    "Reading: the three feature-wise rows test the same 20 distinct windows one after the other in one process "
    "(median, min–max): alibi-detect's TabularDrift as released calls scipy's `ks_2samp` on each numeric column, "
    "which sorts the 5,000 reference values again for every window and evaluates the exact KS distribution "
    "(`kstwo`) once per column; raymlops's backends score the numeric columns against the reference sorted once "
    "per version and compute each distinct p-value once (remembered: a version's windows have one size, so "
    "statistics repeat), with the same statistics and p-values (a unit test holds them equal to scipy's and "
    "alibi-detect's, bit for bit). Compare rows of one run: this shared virtual machine's speed moves several-fold "
    "with its host's load (the MMD row took 416 ms on 2026-11-26 and 943 ms in the run recorded here).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="online detection trials")
    parser.add_argument("--ert", type=float, default=1000.0, help="expected run time of the online detector")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()

    reference = TabularReference.build(columns(5000), NUMERIC, CATEGORICAL)
    fresh = columns(20 * 500, offset=5000)
    windows = [{k: v[i * 500:(i + 1) * 500] for k, v in fresh.items()} for i in range(20)]
    rows = [("check", "cost")] + check_costs(reference, windows)

    shift = {"features": [0, 1, 2], "magnitude": 0.5}
    first, _ = tumbling_ks(reference, 2000, 50, **shift)
    _, false_alarms = tumbling_ks(reference, 20000, 50)
    rows.append(("KS on tumbling 50-row windows, p = 0.05: rows to flag the shift", f"{first}"))
    rows.append(("KS on tumbling 50-row windows: false alarms in 20,000 in-distribution rows",
                 f"{false_alarms} (one every {20000 // max(false_alarms, 1):,} rows)"))

    started = time.perf_counter()
    online = build_online("mmd", reference, 1000, ert=args.ert, window_size=20, n_bootstraps=5000)
    rows.append((f"MMDDriftOnline calibration, ERT {args.ert:.0f}, 1,000 reference rows, 5,000 bootstraps",
                 f"{time.perf_counter() - started:.0f} s"))
    delays = online_delays(online, reference, args.trials, 400, **shift)
    found = [d for d in delays if d is not None]
    rows.append((f"MMDDriftOnline: rows to flag the shift ({args.trials} trials)",
                 f"median {statistics.median(found):.0f}, max {max(found)}, missed {len(delays) - len(found)}"
                 if found else f"missed all {len(delays)}"))
    calm = online_delays(online, reference, 3, 1500)
    rows.append(("MMDDriftOnline: rows to a false alarm without shift (3 streams of 1,500)",
                 ", ".join(str(d) if d is not None else "none" for d in calm)))

    text = "\n".join([f"| {a} | {b} |" if i else f"| {a} | {b} |\n|---|---:|" for i, (a, b) in enumerate(rows)])
    text += ("\n\nShift: +0.5 standard deviation on 3 of the 20 features (x0, x1, x2). The unit tests state the "
             "window-level behaviour: ≤ 8 of 100 calm 200-row windows flagged, one shifted feature of 20 flagged "
             "within two windows.\n\n" + READING)
    print(text)
    if args.write:
        write_section("Drift detection", f"Machine: {machine_description()}, one process\n\n{text}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
