"""Example entrypoint: `ray job submit --working-dir . -- python jobs/monitor.py --config configs/monitor.yaml`.

A thin wrapper over the packaged job `python -m raymlops.jobs.monitor` (what `raymlops monitor start` submits);
copy it into your project to add steps around the job.
"""

import sys

from raymlops.jobs.monitor import main

if __name__ == "__main__":
    sys.exit(main())
