"""The prediction-record path, from a replica's buffer to the monitor's consumers.

Two figures, in one process (no Ray transport: each batch is serialised as Ray does, pickle
protocol 5 with out-of-band buffers, and deserialised on the consumer side):

1. **Caller CPU per row in the replica**: ``RecordStream.add`` for every request plus the
   flush that turns the buffer into a batch and serialises it — the work a replica does
   for monitoring, per row (process CPU time, not wall time).
2. **Rows/s the monitor ingests with checks running**: a ``DriftMonitor`` (default detectors,
   online detector off so calibration does not dominate) takes the replica's batches as fast
   as it can while its detection loop checks full windows between ingests on the same
   interpreter; windows dropped unchecked are reported next to it.

Run it on two checkouts to compare (``--label before`` / ``--label after``); ``--write``
records the run's table under "Record path" in RESULTS.md, keeping rows of other labels.

    python benchmarks/record_path.py --label after --write
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from benchmarks_common import RESULTS, machine_description, write_section  # noqa: E402

TITLE = "Record path (replica buffer → monitor)"


# the actor sink sends one Arrow IPC buffer where the checkout's stream encodes batches
from raymlops.serve import stream as _stream  # noqa: E402

_ENCODE = getattr(_stream, "encode", None)


class Collector:
    """A sink that serialises each batch as Ray's transport does (pickle protocol 5, buffers
    out of band) and keeps what would travel; the consumer side deserialises it."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, list]] = []

    def send(self, batch) -> None:
        buffers: list = []
        payload = _ENCODE(batch) if _ENCODE is not None else batch  # what the actor sink hands to Ray
        self.sent.append((pickle.dumps(payload, protocol=5, buffer_callback=buffers.append), buffers))

    def failed_rows(self) -> int:
        return 0


def received(payload: tuple[bytes, list]):
    """A batch as the consumer gets it (deserialised, as Ray does before calling the actor)."""
    data, buffers = payload
    return pickle.loads(data, buffers=buffers)


def _buffer_class():
    try:
        from raymlops.serve.buffer import RecordBuffer
    except ImportError:  # older layout
        from raymlops.serve.records import RecordBuffer
    return RecordBuffer


def _requests(data_dir: str, rows_per_request: int, count: int) -> list[tuple[dict, dict, list, list]]:
    """Request-shaped inputs from the test split: (meta, feature columns, predictions, confidences)."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(data_dir) / "test.parquet")
    features = [n for n in table.column_names if n != "y"]  # y: the synthetic label
    columns = {n: table.column(n).to_pylist() for n in features}
    size = table.num_rows
    out = []
    for i in range(count):
        start = (i * rows_per_request) % max(size - rows_per_request, 1)
        cols = {n: v[start:start + rows_per_request] for n, v in columns.items()}
        meta = {"request_id": f"r{i}", "time": time.time(), "model": "bench", "version": 1 + (i % 10 == 0),
                "arm": "canary" if i % 10 == 0 else "stable", "latency_ms": 1.0, "status": 200}
        out.append((meta, cols, ["c0"] * rows_per_request, [0.9] * rows_per_request))
    return out


def caller_cpu(requests, repeats: int) -> list[float]:
    """Microseconds of process CPU per row for add + flush + serialise, per repeat."""
    from raymlops.serve.stream import RecordStream

    buffer_cls = _buffer_class()
    results = []
    rows = sum(len(r[2]) for r in requests)
    for _ in range(repeats):
        stream = RecordStream(Collector(), buffer_cls(capacity=1_000_000, flush_rows=64, flush_ms=100.0))
        started = time.process_time()
        for meta, cols, predictions, confidences in requests:
            stream.add(meta, cols, predictions, confidences)
            if stream.buffer.size >= stream.buffer.flush_rows:
                stream.flush()
        stream.flush()
        results.append((time.process_time() - started) / rows * 1e6)
    return results


def _batches(requests, flush_rows: int = 64) -> list:
    """The encoded batches a replica's stream sends for ``requests``, ``flush_rows`` rows each."""
    from raymlops.serve.stream import RecordStream

    sink = Collector()
    stream = RecordStream(sink, _buffer_class()(capacity=1_000_000, flush_rows=flush_rows, flush_ms=100.0))
    for meta, cols, predictions, confidences in requests:
        stream.add(meta, cols, predictions, confidences)
        if stream.buffer.size >= stream.buffer.flush_rows:
            stream.flush()
    stream.flush()
    return sink.sent


async def _warm(monitor, versions=(1, 2)) -> None:
    """What a running monitor has before traffic: its tests imported and each version's checker
    built and calibrated (seconds, in its checks thread), so neither falls inside the timing."""
    checker = getattr(monitor, "_checker", None)
    if checker is None:  # a checkout whose monitor builds checkers inline
        return
    await monitor.start()
    if monitor.tests_imported is not None:
        await monitor.tests_imported
    for version in versions:
        await checker(version)


async def _ingest(monitor, sent, detection: bool = True) -> tuple[float, dict]:
    await _warm(monitor)
    started = time.perf_counter()
    for i, payload in enumerate(sent):
        await monitor.ingest(received(payload))
        if i == 0 and not detection:
            monitor._tasks[0].cancel()  # the detection loop (the first task in both checkouts) stays idle
        await asyncio.sleep(0)  # the detection loop gets its turns, as between actor calls
    elapsed = time.perf_counter() - started
    counters = dict(monitor.counters)
    for task in monitor._tasks:
        task.cancel()
    return elapsed, counters


WINDOW = 500


def monitor_ingest(registry_settings: dict, batches, repeats: int, detection: bool = True) -> list[dict[str, float]]:
    """Per repeat, for a fresh monitor: rows/s ingested, rows/s of full windows checked, and the
    share of full windows dropped unchecked (without ``detection`` the detection loop is stopped:
    the ingest path alone)."""
    window = WINDOW
    from raymlops.monitor.actor import DriftMonitor

    rows = sum(_rows(received(payload)) for payload in batches)
    results = []
    for repeat in range(repeats):
        config = {"model_name": "bench", "window": {"size": window, "min_samples": 100},
                  "detectors": {"online": {"enabled": False}, "mmd": {"enabled": False}},
                  "prediction_log": {"enabled": True, "flush_every_s": 1.0}, "queue_windows": 8,
                  "state_root": tempfile.mkdtemp(prefix=f"bench-monitor-{repeat}-")}
        monitor = DriftMonitor(config, registry_settings)
        elapsed, counters = asyncio.run(_ingest(monitor, batches, detection))
        windows = max(rows // window, 1)
        results.append({"ingested": rows / elapsed, "checked": counters.get("windows_checked", 0) * window / elapsed,
                        "dropped": counters.get("windows_dropped", 0) / windows})
    return results


def _rows(batch) -> int:
    import pyarrow as pa

    if isinstance(batch, pa.Buffer):
        batch = pa.ipc.open_stream(batch).read_next_batch()
    num_rows = getattr(batch, "num_rows", None)
    return num_rows if num_rows is not None else len(next(iter(batch.values()), []))


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.2f} ({min(values):,.2f}–{max(values):,.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="current", help="name of this checkout in the table (before/after)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record the figures in RESULTS.md")
    args = parser.parse_args()

    from raymlops.config import RegistryConfig, SynthConfig
    from raymlops.data.synth import synthesize
    from raymlops.registry import Registry
    from raymlops.testing import register_untrained_version

    work = Path(tempfile.mkdtemp(prefix="bench-records-"))
    data = synthesize(SynthConfig(rows=5000, output=str(work / "data")))
    registry_settings = {"database_url": f"sqlite:///{work / 'registry.db'}", "artifact_root": str(work / "artifacts")}
    registry = Registry.from_config(RegistryConfig.model_validate(registry_settings))
    for seed in (0, 1):
        register_untrained_version(registry, "bench", data.directory, seed=seed)
    lines = []
    for rows_per_request in (1, 32):
        requests = _requests(data.directory, rows_per_request, args.requests // rows_per_request * 1)
        cpu = caller_cpu(requests, args.repeats)
        sent = _batches(requests)
        alone = monitor_ingest(registry_settings, sent, args.repeats, detection=False)
        busy = monitor_ingest(registry_settings, sent, args.repeats)
        lines.append(f"| {args.label} | {rows_per_request} | {sum(len(r[2]) for r in requests):,} | {_spread(cpu)} | "
                     f"{_spread([r['ingested'] for r in alone])} | {_spread([r['ingested'] for r in busy])} | "
                     f"{_spread([r['checked'] for r in busy])} | {_spread([r['dropped'] * 100 for r in busy])} |")
        print(lines[-1], flush=True)
    if args.write:
        _record(args.label, lines)


def _record(label: str, lines: list[str]) -> None:
    """Keep the other labels' rows of the table, replace this label's."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    kept = [line for line in re.findall(r"^\| (?!label|---)[^|\n]+\|.*$", _section(text), re.M)
            if not line.startswith(f"| {label} |")]
    header = ("| label | rows/request | rows | caller CPU µs/row | monitor ingest alone, rows/s | ingest with "
              "checks running, rows/s | rows checked/s | windows dropped % |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    body = (f"Machine: {machine_description()}. {_method()}\n\n{header}\n" + "\n".join(kept + lines) + "\n\n"
            + READING + "\n")
    write_section(TITLE, body)


READING = ("Reading: a one-row request used to cost a replica about 13 µs per row, most of it appending each of "
           "the request's fields to its own column as the request was answered; keeping the request as it came "
           "and building every column once per flush brings it under the 10 µs target; 32-row requests pay up "
           "to about a microsecond more per row (3–4 µs; an interleaved A/B of the two buffers gave +7 %). The "
           "monitor columns are the same batches either way (they differ only by the machine's noise). `checks in a "
           "thread`: the tests run in a thread of their own in Linux's idle class, so with nothing else on the "
           "machine they take about half the interpreter and test several times the rows of the earlier loop between "
           "ingests (5,000–8,000 rows/s of windows against 2,200–2,300). `KS against a reference sorted once`: the "
           "feature test scores every numeric column against the reference sorted once per version and computes "
           "each distinct p-value once (scipy's `ks_2samp` per column sorted the reference again on every window; "
           "same statistics and p-values), so the same thread tests about 1.5 times the rows: in four alternating "
           "runs against `checks in a thread`, 7,300–9,000 rows/s of windows against 4,400–5,800 at one row, and "
           "5,500–8,900 against 4,400–6,100 at 32 rows. `effect sizes measured together` is the monitor as it runs "
           "now: the Wasserstein effect sizes of all numeric columns in one sort and one weighted sum on quantile "
           "steps kept per window size; in three alternating runs against `KS against a reference sorted once` it "
           "tested 8,900–12,800 rows/s of windows against 5,300–8,700 at one row and 10,900–13,000 against "
           "7,000–9,900 at 32 rows, and its 8-window queue dropped 2.5–10 % of full windows at one row (15–30 %) and "
           "25–38 % at 32 rows (45–48 %). The caller CPU and ingest columns are the same code in the last four labels"
           " and moved with the machine: this session's machine ran slower than the one that measured the older "
           "rows, and its speed moved within the session: one row's caller CPU, the same code in every run, was 6.3 µs "
           "in 2026-12-08's first run of `checks in a thread` and 8.8–15 µs in this session's seventeen runs (the "
           "current code: 9.5–11.6 µs, around the 10 µs target on this slower machine; 32 rows: 5.8–10.4 µs). "
           "Compare rows measured together.")


def _section(text: str) -> str:
    match = re.search(rf"^## {re.escape(TITLE)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return match.group(1) if match else ""


def _method() -> str:
    return ("One process, no Ray transport. "
            "Synthetic data (20 features), 20,000 rows per repeat (one-row or 32-row requests), 3 repeats. "
            "Caller CPU: "
            "process time of `RecordStream.add` per request plus the flushes (64 rows) and their serialisation "
            "(pickle protocol 5 with out-of-band buffers, as Ray sends them), per row. Monitor ingest: "
            "deserialising each batch and `DriftMonitor.ingest`, a fresh monitor (feature-wise and output "
            "tests on 500-row windows, MMD and online off, prediction log on) takes those batches back to back "
            "with its detection loop running (the row's label says where its tests ran), after its tests were "
            "imported and each version's checker built; `rows checked/s` counts the rows of the windows it tested, `windows dropped` the share of "
            "full windows its 8-window queue dropped unchecked; `ingest alone` stops the detection loop "
            "(windows fill and are queued, none is checked). Each cell: median (min–max). "
            "`columns appended per request` ran on 3bf9df8 (each request's fields appended to the buffer's columns "
            "as it was answered), `requests kept until drain` on the buffer that keeps each request as it came and "
            "builds the columns when it drains, both in the same session (an earlier comparison, row-walked "
            "dict-of-lists batches against the columnar batch, is in git history); `checks in a thread` on efdccd7 "
            "(same buffer as `requests kept until drain`; the feature test's KS by scipy's `ks_2samp` per column) "
            "`KS against a reference sorted once` on ffc7003 and `effect sizes measured together` on the current "
            "code, alternately in one session, 2026-12-08 (the table holds the last run of each).")


if __name__ == "__main__":
    main()
