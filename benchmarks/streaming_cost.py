"""What streaming every answered row to the drift monitor costs a caller: serving latency of the
same model with its records streamed to the monitor (the default serve config), streamed to the
monitor with the earlier default flushes (every 64 rows or 100 ms), streamed to an actor that only
counts them (the transport alone, without the monitor's CPU), and with no records
(``records.sink=none``), measured side by side in one run.

    python benchmarks/streaming_cost.py [--seconds 4] [--repeats 10] [--write]

One local cluster (raymlops' Serve settings and front door) holds the four applications at once, one
replica each (0.25 CPU), the two streamed to the monitor sharing the model's drift monitor (the default
monitor config: feature-wise and output tests on every full window). 1-row v1 predict requests
through the front door at concurrency 1 and 8; within each repeat every cell is measured for
every application, and their order alternates between repeats, so drift in the
machine's state falls on all alike. Reported: median (min–max) over the repeats, and the p99 of
every repeat's latencies pooled, streamed / no records, with a 90 % interval from resampling whole
repeats (each repeat measured both, so a repeat is the unit that shares the machine's state).
Target: p99 with streaming within +5 %: met when the interval's top is at most +5 %, not met when
its bottom is above, undecided otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from benchmarks_common import SpeedProbe, cluster_ports, isolated_home, machine_description, measure_http, write_section  # noqa: E402

TITLE = "Streaming to the monitor: serving latency on vs off"
MODEL = "streamcost"
PORTS = cluster_ports(29000)
ROW = {"island": "Dream", "bill_length_mm": 40.0, "bill_depth_mm": 18.0, "flipper_length_mm": 190.0,
       "body_mass_g": 3500.0, "sex": "female"}
CONCURRENCY = (1, 8)
APPS = {"on": "records streamed to the monitor", "count": "records streamed to an actor that only counts them",
        "on64": "records streamed to the monitor, flushed every 64 rows or 100 ms", "off": "no records"}
FLUSH_64 = ["records.flush_rows=64", "records.flush_ms=100"]  # the default before 1,024 rows or 1 s
COUNTER = "stream-counter"


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def serve_config(app: str):
    from raymlops.config import ServeConfig, load_config

    return load_config(None, ServeConfig, [
        f"model_name={MODEL}", f"app_name={MODEL}-{app}", f"route_prefix=/{app}", "traffic.canary_weight=0",
        "replicas.min_replicas=1", "replicas.max_replicas=1",
        *{"on": ["records.sink=monitor"], "off": ["records.sink=none"], "on64": ["records.sink=monitor", *FLUSH_64],
          "count": ["records.sink=actor", f"records.options={{actor_name: {COUNTER}}}"]}[app]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per cell and repeat")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--write", action="store_true", help="record the figures in RESULTS.md")
    args = parser.parse_args()
    isolated_home("rmo-stream-")

    import httpx

    from raymlops.auth import client_environment, ensure_admin_token
    from raymlops.config import LocalClusterConfig, PrepareConfig, RegistryConfig
    from raymlops.data import prepare_dataset
    from raymlops.local_head import down, up
    from raymlops.registry import Registry
    from raymlops.serve.deploy import deploy
    from raymlops.testing import register_untrained_version

    data = prepare_dataset(PrepareConfig()).directory
    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, MODEL, data, seed=0)
    registry.set_alias(MODEL, "champion", 1)
    registry.close()
    cells: dict[tuple[str, int], list[dict]] = {}
    result = up(LocalClusterConfig(**PORTS, temp_dir="/tmp/rmo-stream"))
    print(result.message, flush=True)
    try:
        os.environ.update(client_environment(loopback=True))
        import ray

        from raymlops.testing import RecordCollector

        ray.init(address=result.addresses.gcs, namespace="raymlops", log_to_driver=False)
        counter = ray.remote(RecordCollector).options(name=COUNTER, num_cpus=0).remote(keep=False)
        urls = {app: f"{deploy(serve_config(app), result.addresses).url}/v1/models/{MODEL}/predict" for app in APPS}
        with SpeedProbe() as probe:
            for repeat in range(args.repeats):
                order = list(APPS) if repeat % 2 == 0 else list(reversed(APPS))
                for concurrency in CONCURRENCY:
                    for app in order:
                        figures = measure_http(urls[app], {"instances": [ROW]}, concurrency, args.seconds,
                                               keep_latencies=True)
                        cells.setdefault((app, concurrency), []).append(figures)
                        print(repeat, app, concurrency, {k: v for k, v in figures.items() if k != "latencies_ms"},
                              flush=True)
        admin = {"authorization": f"Bearer {ensure_admin_token()}"}
        streams = [httpx.get(urls[app].rsplit("/predict", 1)[0], timeout=30, headers=admin).json().get("records", {})
                   for app in ("on", "on64")]
        drift = httpx.get(urls["on"].replace("/predict", "/drift"), timeout=30, headers=admin).json()
        records = {"sent_rows": sum(s.get("sent_rows", 0) for s in streams),
                   "lost_rows": sum(s.get("lost_rows", 0) for s in streams), "counted": ray.get(counter.count.remote()),
                   "ingested": drift.get("counters", {}).get("rows_ingested")}
    finally:
        import ray

        ray.shutdown()  # before the cluster goes: a connected driver aborts when its GCS disappears
        down()
    text = report(cells, args, result.message, records, probe.summary())
    print(text)
    if args.write:
        write_section(TITLE, text)


def pooled_p99_ratio(streamed: list[dict], plain: list[dict], draws: int = 2000,
                     quantile: float = 99) -> tuple[float, float, float]:
    """The p99 (``quantile``) of the streamed runs' pooled latencies over that of the runs without
    records, and its 90 % interval from resampling whole repeats (the i-th run of each measured in
    repeat i)."""
    import numpy as np

    ours = [np.asarray(run["latencies_ms"]) for run in streamed]
    theirs = [np.asarray(run["latencies_ms"]) for run in plain]

    def ratio(picks) -> float:
        return float(np.percentile(np.concatenate([ours[i] for i in picks]), quantile)
                     / np.percentile(np.concatenate([theirs[i] for i in picks]), quantile))

    rng = np.random.default_rng(0)
    repeats = len(ours)
    sampled = [ratio(rng.integers(0, repeats, repeats)) for _ in range(draws)] or [ratio(range(repeats))]
    return ratio(range(repeats)), float(np.percentile(sampled, 5)), float(np.percentile(sampled, 95))


def verdict(low: float, high: float) -> str:
    """Met when the whole interval is within +5 %, not met when all of it is above; else undecided."""
    if high <= 1.05:
        return "met"
    if low > 1.05:
        return "NOT met"
    return "undecided (the interval holds +5 %: the noise is larger than what it would take to tell)"


READING = (
    "Reading (the run recorded here): replicas flush every 1,024 rows or 1 s (`records.flush_rows`, "
    "`records.flush_ms`; the row \"every 64 rows or 100 ms\" is the earlier setting, measured beside it), send a "
    "backlog in batches of at most `flush_rows` rows, one per look, tell their metrics of sent and lost rows once per "
    "look, and the monitor tests its windows in a thread in Linux's idle scheduling class — on this run's code with "
    "the cheaper window checks (the feature test against a reference sorted once, effect sizes of all columns "
    "together; benchmarks/RESULTS.md's record path section). At concurrency 1 the monitor's p99 cost met the "
    "target (−16 %, interval −32 % to +0.4 %); at concurrency 8 it did not (+33 %, interval +8.8 % to +52 %), while "
    "an actor that only counts the same batches measured +2.2 % there. The machine line says why one run is not a "
    "verdict: the same few milliseconds of pure-Python work, timed every 5 s through the run, took from 8.2 to 36 ms"
    " — this shared virtual machine's speed moves several-fold with its host's load, none of it counted as steal "
    "time, so a 5 % difference in a tail latency is within what the machine alone moves. Every run since the "
    "1,024-row flushes, at concurrency 8: −1.3 %, +10.5 %, +27 %, +9.5 %, +21.8 %, −0.5 % (the run before this one) "
    "and +33 % (this one); at concurrency 1 the two runs before it were undecided (+5.0 %, +5.4 %). Over the runs the monitor's "
    "cost at concurrency 8 is positive more often than not and larger than the counting actor's: its ingest and "
    "tests share the two cores with serving. Throughput shows it more steadily than p99: records to the monitor "
    "served 0.95× of no records at concurrency 8 here (0.84× in the run before). Testing fewer rows did not lower it"
    " (the peers reading: `window.sample_rate` 0.01 against 1 in one cluster, no gain); what would is the monitor on"
    " cores or nodes of its own. A drift event comes at most about a second later than with the earlier flushes; "
    "feedback for an answer not yet flushed waits up to `1 + 5 × flush_ms/1000` s.\n")


def report(cells: dict, args, message: str, records: dict, speed: str) -> str:
    lines = ["| records | concurrency | req/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for (app, concurrency), runs in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(f"| {APPS[app]} | {concurrency} | {spread([r['rps'] for r in runs], 0)} | "
                     f"{spread([r['p50'] for r in runs])} | {spread([r['p99'] for r in runs])} | "
                     f"{sum(r['errors'] for r in runs)} |")
    verdicts = []
    for app in [app for app in APPS if app != "off"]:
        for concurrency in CONCURRENCY:
            ratio, low, high = pooled_p99_ratio(cells[(app, concurrency)], cells[("off", concurrency)])
            tail = pooled_p99_ratio(cells[(app, concurrency)], cells[("off", concurrency)], draws=0, quantile=99.9)[0]
            verdicts.append(f"- {APPS[app]}, concurrency {concurrency}: pooled p99 / no records = {ratio:.3f} "
                            f"({(ratio - 1) * 100:+.1f} %; 90 % interval {(low - 1) * 100:+.1f} % to "
                            f"{(high - 1) * 100:+.1f} %), target ≤ +5 %: {verdict(low, high)}; pooled p99.9 "
                            f"{(tail - 1) * 100:+.1f} %")
    door = message[message.find("front door"):] if "front door" in message else message
    return (f"Machine: {machine_description()}; {speed}. {args.repeats} repeats of {args.seconds:g} s per cell (after 1 s of "
            f"warm-up), every application measured in every repeat, in alternating order; median (min–max). "
            f"One cluster, {door}; one replica (0.25 CPU) per application; 1-row v1 predict requests from one "
            f"closed-loop aiohttp process. The two monitored replicas' record streams (one monitor) at the end: "
            f"{records.get('sent_rows', '?')} rows sent, {records.get('lost_rows', '?')} lost, {records.get('ingested', '?')} ingested by the monitor; "
            f"the counting actor received {records.get('counted', '?')} rows.\n\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n\n"
            + READING)


if __name__ == "__main__":
    main()
