"""Starting a model's drift monitor from outside the cluster: through the Ray Jobs API
(``jobs/monitor.py``), so only the dashboard address and Ray's token are needed."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

MONITOR_SCRIPT = "jobs/monitor.py"


def start_monitor(model: str, config: str | None, overrides: Sequence[str] = (),
                  echo: Callable[[str], None] | None = None) -> str:
    """Create the model's monitor actor if it is not running (idempotent); returns the job id.

    Raises:
        JobError: the job failed (its log names why).
    """
    from raymlops.jobs import entrypoint_for, submit_and_follow
    from raymlops.jobs.client import require_script

    require_script(MONITOR_SCRIPT)
    config = config if config and Path(config).exists() else "configs/monitor.yaml"
    entrypoint = entrypoint_for(MONITOR_SCRIPT, config, [f"model_name={model}", *overrides])
    return submit_and_follow(entrypoint, working_dir=".", echo=echo or (lambda text: None))
