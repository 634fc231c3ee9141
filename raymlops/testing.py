"""Helpers that tests (and users' own tests) share: quick model versions without a training run,
traffic until a rollout is promoted, and an open-loop load generator for fault tests."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from raymlops.types import ModelVersion


def register_untrained_version(registry, name: str, data_dir: str, seed: int = 0, hidden: tuple[int, ...] = (8,),
                               constant_class: int | None = None,
                               environment: dict | None = None) -> ModelVersion:
    """Register a randomly initialised MLP for the data set at ``data_dir`` (complete artifact,
    real preprocessing and signature). With ``constant_class``, the model always predicts it;
    ``environment`` is recorded in its lineage as the environment it was made in."""
    import torch

    from raymlops.config import DetectorSettings, TrainConfig
    from raymlops.models import build_model
    from raymlops.models.torch_tabular import ModelSpec, TorchTabularModel
    from raymlops.registry import Lineage
    from raymlops.train.package import reference_sample, write_artifact
    from raymlops.train.trainer import prepare_inputs

    inputs = prepare_inputs(TrainConfig(data={"path": data_dir}))
    torch.manual_seed(seed)
    spec = ModelSpec("raymlops.models:mlp", {"hidden": list(hidden)}, inputs.preprocessor.output_dim,
                     inputs.output_dim)
    model = build_model(spec.builder, spec.params, spec.input_dim, spec.output_dim)
    if constant_class is not None:
        with torch.no_grad():
            last = model[-1]
            last.weight.zero_()
            last.bias.fill_(-10.0)
            last.bias[constant_class] = 10.0
    model.eval()
    loaded = TorchTabularModel(model, inputs.preprocessor, inputs.schema, spec)  # type: ignore[arg-type]
    reference = reference_sample(inputs.train_table, loaded, rows=1000, seed=seed)
    with tempfile.TemporaryDirectory() as directory:
        artifact = write_artifact(Path(directory) / "model", loaded, reference, DetectorSettings().model_dump())
        lineage = Lineage(environment=environment) if environment else None
        return registry.register(name, artifact, metrics={}, lineage=lineage, description=f"untrained seed {seed}")


class RecordCollector:
    """A record consumer for tests and benchmarks: wrap it with ``ray.remote`` and point the
    ``actor`` record sink at it. Counts every row; keeps the batches when ``keep``."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.rows = 0
        self.batches: list = []

    def ingest(self, batch) -> None:
        """Take one record batch (the RecordSink protocol's ``actor`` method; the actor sink sends
        it as one Arrow IPC buffer)."""
        from raymlops.records import as_record_batch

        batch = as_record_batch(batch)
        self.rows += batch.num_rows
        if self.keep:
            self.batches.append(batch)

    def count(self) -> int:
        """Rows received so far."""
        return self.rows

    def columns(self) -> dict[str, list]:
        """Every kept row, as columns (name → values)."""
        from raymlops.records import concat_batches

        return concat_batches(self.batches).to_pydict()


def wait_for(condition, timeout_s: float = 20.0, every_s: float = 0.25):
    """Poll ``condition()`` until it returns something truthy or ``timeout_s`` passes; returns its
    last value (bounded waiting for tests of things that settle asynchronously)."""
    import time

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    return condition()


def remove_served_model(model: str, addresses, app_name: str | None = None) -> None:
    """Undeploy a model: its Serve application, drift monitor and rollout controller — detached
    actors outlive the test that made them and would hold the shared cluster's CPUs."""
    from raymlops.serve.deploy import undeploy

    undeploy(app_name or model, addresses, model=model)


def promote_under_traffic(client, model: str, rows: list, registry, timeout_s: float = 180.0):
    """Send one-row /v1 requests (cycling ``rows``, 20 ms apart) until the model's rollout records
    ``rollout_promote`` or ``timeout_s`` passes (bounded); returns the promote events, the
    status codes of failed requests, and the versions that answered."""
    import threading
    import time

    stop, failures, versions = threading.Event(), [], set()

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            response = client.post(f"/v1/models/{model}/predict", json={"instances": [rows[i % len(rows)]]})
            if response.status_code != 200:
                failures.append(response.status_code)
            else:
                versions.add(response.json()["version"])
            i += 1
            time.sleep(0.02)

    loader = threading.Thread(target=traffic)
    loader.start()
    try:
        promoted = wait_for(lambda: registry.events(model, kinds=["rollout_promote"]), timeout_s, every_s=1)
    finally:
        stop.set()
        loader.join(60)
    return promoted, failures, versions


class OpenLoopLoad:
    """Requests at a fixed rate from a small thread pool, whatever the answers take (open loop:
    a slow or dead server does not slow the sender down), bounded in count and time. Only
    127.0.0.1 is ever a target.

    Each answer is kept as ``(sent_at, status, replica_answered)``: ``replica_answered`` says the
    model server itself answered (it names the request id it issued), so the request has a record.
    """

    def __init__(self, url: str, body: dict, rate_per_s: float, duration_s: float, headers: dict | None = None,
                 workers: int = 16) -> None:
        if not url.startswith(("http://127.0.0.1", "http://localhost")):
            raise ValueError("load only ever goes to 127.0.0.1")
        self.url, self.body, self.rate, self.duration_s = url, body, rate_per_s, duration_s
        self.headers, self.workers = headers or {}, workers
        self.answers: list[tuple[float, int, bool]] = []
        self._thread: Any = None
        self._stop: Any = None

    def start(self) -> "OpenLoopLoad":
        """Start sending in the background; returns self."""
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import time
        from concurrent.futures import ThreadPoolExecutor

        import httpx

        client = httpx.Client(timeout=30)
        started = time.monotonic()

        def one(sent_at: float) -> None:
            try:
                response = client.post(self.url, json=self.body, headers=self.headers)
                self.answers.append((sent_at, response.status_code, "x-raymlops-request-id" in response.headers))
            except httpx.HTTPError:
                self.answers.append((sent_at, 0, False))

        with ThreadPoolExecutor(self.workers) as pool:
            for i in range(int(self.rate * self.duration_s)):
                if self._stop.is_set():
                    break
                due = started + i / self.rate
                time.sleep(max(due - time.monotonic(), 0))
                pool.submit(one, time.monotonic() - started)
        client.close()

    def stop(self) -> "OpenLoopLoad":
        """Send no more requests; wait for those in flight."""
        if self._stop is not None:
            self._stop.set()
        return self.wait()

    def wait(self, timeout_s: float = 300) -> "OpenLoopLoad":
        """Wait until every request was answered (bounded)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self

    def statuses(self) -> dict[int, int]:
        """Answers by HTTP status (0: no answer at all)."""
        from collections import Counter

        return dict(Counter(status for _, status, _ in self.answers))

    def recorded(self) -> int:
        """Requests the model server answered itself (each left one record row)."""
        return sum(1 for _, _, replica in self.answers if replica)
