"""The prediction path of a replica: answer on the routed version, record what happened
(answers and refusals alike) in the record stream, and run the shadow copy in the
background — compared with the answer, never returned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

from raymlops.errors import ModelOutputError
from raymlops.models.contract import Prediction
from raymlops.serve.edge import Outcome
from raymlops.serve.shadow import compare
from raymlops.serve.split import Route

log = logging.getLogger("ray.serve")


class Predictions:
    """Answers, records and shadow copies of one model server replica.

    Args:
        model_name: the model.
        backend: the live versions (``LocalVersions`` or ``DeploymentVersions``).
        stream: the replica's record stream.
        metrics: the replica's ``ServerMetrics``.
        shadow_max_in_flight: shadow predictions run at once; more are skipped and counted.
    """

    def __init__(self, model_name: str, backend: Any, stream: Any, metrics: Any, shadow_max_in_flight: int) -> None:
        self.model_name, self.backend, self.stream, self.metrics = model_name, backend, stream, metrics
        self.shadow_max_in_flight = shadow_max_in_flight
        self._shadow_tasks: set[asyncio.Task] = set()

    async def answer(self, request_id: str, outcome: Outcome, choice: Route, columns: dict) -> Prediction:
        """Predict on the chosen version, record it, and start its shadow copy."""
        outcome.version, outcome.arm = choice.version, choice.arm
        started = time.perf_counter()
        result = await self.backend.predict(choice.version, columns)
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        broken = result.non_finite()
        if broken is not None:  # never answered: the edge counts and records it as a 500
            raise ModelOutputError(version=choice.version, problem=f"the model answered a value that is not finite "
                                   f"(NaN or infinity) in output {broken}")
        self.record(request_id, outcome, 200, columns, result)
        outcome.recorded = True
        if choice.shadow_version is not None:
            self._start_shadow(request_id, choice, columns, result)
        return result

    def record(self, request_id: str, outcome: Outcome, status: int, columns: dict, result: Optional[Prediction]) -> None:
        """Buffer the request's rows (one row with no prediction when it was refused)."""
        meta = {"request_id": request_id, "time": time.time(), "model": self.model_name, "version": outcome.version,
                "arm": outcome.arm, "latency_ms": outcome.latency_ms, "status": status}
        if result is None:
            self.stream.add(meta, {}, [None])
        else:
            confidence = None if result.confidence is None else result.confidence.tolist()
            watched = columns if result.monitored is None else {k: v.tolist() for k, v in result.monitored.items()}
            self.stream.add(meta, watched, result.predicted, confidence)

    async def close(self) -> None:
        """Let shadow calls finish briefly, then flush the last records."""
        if self._shadow_tasks:
            await asyncio.wait(list(self._shadow_tasks), timeout=2)
        await self.stream.close()

    def _start_shadow(self, request_id: str, choice: Route, columns: dict, answered: Prediction) -> None:
        if len(self._shadow_tasks) >= self.shadow_max_in_flight:
            self.metrics.skip_shadow()
            return
        task = asyncio.get_running_loop().create_task(self._shadow(request_id, choice, columns, answered))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, request_id: str, choice: Route, columns: dict, answered: Prediction) -> None:
        shadow_version = choice.shadow_version
        assert shadow_version is not None  # only shadowed routes get here
        shadow = Outcome()
        shadow.version, shadow.arm = shadow_version, "shadow"
        try:
            started = time.perf_counter()
            result = await self.backend.predict(shadow_version, columns, background=True)
            if result.non_finite() is not None:
                raise ModelOutputError(version=shadow_version, problem=f"not finite: {result.non_finite()}")
            shadow.latency_ms = (time.perf_counter() - started) * 1000
            comparison = compare(answered, result)
        except Exception as exc:  # noqa: BLE001 - a failing shadow is recorded, never seen by the caller
            log.warning("shadow version %s failed on request %s: %s", shadow_version, request_id, exc)
            self.metrics.observe_request(shadow.version, "shadow", 500, 0.0)
            self.record(request_id, shadow, 500, {}, None)
            return
        self.metrics.observe_shadow(choice.version, shadow_version, comparison.rows, comparison.disagreements)
        self.metrics.observe_request(shadow.version, "shadow", 200, shadow.latency_ms)
        self.record(request_id, shadow, 200, columns, result)
