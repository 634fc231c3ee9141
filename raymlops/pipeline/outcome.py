"""How a pipeline ended, as an exit code and a JSON summary. Pure.

Exit codes (documented in the README's CI/CD section):

==== ==============================================================================
0    promoted — or, for a pipeline that stops earlier, its last stage succeeded
     (``gate_passed``, ``deployed``, ``data_ready``)
1    error — a job failed, the cluster or registry could not be reached
2    invalid — the pipeline file or a stage's config does not validate, or does not fit the
     data or the cluster (a model's parameters, a route already taken)
3    gate_refused — the offline gate refused the new version
4    rolled_back — the rollout rolled the canary back (or it was aborted)
5    held — the rollout is held or paused, or did not end within ``rollout.timeout_s``
==== ==============================================================================
"""

from __future__ import annotations

import time
from typing import Any

EXIT_CODES: dict[str, int] = {
    "promoted": 0, "gate_passed": 0, "deployed": 0, "data_ready": 0,
    "error": 1, "invalid": 2, "gate_refused": 3, "rolled_back": 4, "held": 5,
}
#: A rollout's final (or waiting) phase → the pipeline's outcome.
ROLLOUT_OUTCOMES = {"promoted": "promoted", "rolled_back": "rolled_back", "aborted": "rolled_back",
                    "held": "held", "paused": "held"}


def new_summary(name: str, model: str, dashboard: str | None) -> dict[str, Any]:
    """An empty summary of a pipeline run that starts now."""
    return {"pipeline": name, "model": model, "outcome": None, "exit_code": None, "started": time.time(),
            "finished": None, "stages": [], "version": None, "metrics": {}, "gate": None, "rollout": None,
            "links": {"dashboard": dashboard, "jobs": []}, "error": None}


def add_stage(summary: dict[str, Any], name: str, status: str, started: float, **details: Any) -> dict[str, Any]:
    """Record one stage (``status``: done, reused, skipped or failed) with its duration."""
    stage = {"name": name, "status": status, "seconds": round(time.time() - started, 2), **details}
    summary["stages"].append(stage)
    return stage


def finish(summary: dict[str, Any], outcome: str, error: str | None = None) -> dict[str, Any]:
    """Close the summary with its outcome and exit code."""
    summary.update(outcome=outcome, exit_code=EXIT_CODES[outcome], finished=time.time(), error=error)
    return summary


def job_link(dashboard: str | None, job_id: str | None) -> dict[str, Any] | None:
    """A Ray job and where its logs are in the dashboard."""
    if not job_id:
        return None
    return {"id": job_id, "logs": f"{dashboard.rstrip('/')}/#/jobs/{job_id}" if dashboard else None}


def rollout_steps(events: list[Any], canary: int) -> list[dict[str, Any]]:
    """The rollout's decisions for ``canary`` (registry ``rollout_*`` events), oldest first."""
    return [{"action": e.kind.removeprefix("rollout_"), "time": e.time,
             "weight": (e.payload or {}).get("weight"), "reasons": (e.payload or {}).get("reasons", []),
             "numbers": (e.payload or {}).get("numbers", {})}
            for e in events if e.kind.startswith("rollout_") and e.version == canary]
