"""Starting a model's drift monitor from outside the cluster: the packaged job
``python -m raymlops.jobs.monitor`` through the Ray Jobs API, so only the dashboard address and
Ray's token are needed."""

from __future__ import annotations

from typing import Callable, Sequence

MONITOR_JOB = "raymlops.jobs.monitor"


def start_monitor(model: str, config: str | None, overrides: Sequence[str] = (),
                  echo: Callable[[str], None] | None = None, replace: bool = False) -> str:
    """Create the model's monitor actor if it is not running (idempotent; ``replace``: restart a
    running one with these settings, its state restored); returns the job id.

    Raises:
        JobError: the job failed (its log names why).
    """
    from raymlops.submission import entrypoint_for, submit_and_follow
    from raymlops.submission.client import project_working_dir

    working_dir = project_working_dir(config)
    entrypoint = entrypoint_for(MONITOR_JOB, config if working_dir else None, [f"model_name={model}", *overrides])
    if replace:
        entrypoint.append("--replace")
    return submit_and_follow(entrypoint, working_dir=working_dir, echo=echo or (lambda text: None))
